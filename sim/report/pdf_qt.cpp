// PDF through Qt: the report's text laid out by QTextDocument (its HTML subset), printed with
// QPdfWriter; each figure is a custom text object that QSvgRenderer draws from the figure's SVG,
// so charts stay vectors and are the very charts the HTML shows.
#include <QAbstractTextDocumentLayout>
#include <QBuffer>
#include <QByteArray>
#include <QFont>
#include <QGuiApplication>
#include <QPageLayout>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSvgRenderer>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextDocument>
#include <QTextFrame>
#include <QTextObjectInterface>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "sim/report/document.h"
#include "sim/report/svg_chart.h"

namespace kvscope::report {

namespace {

constexpr int kSvgObjectType = QTextFormat::UserObject + 1;
constexpr int kSvgDataProperty = QTextFormat::UserProperty + 1;
const QString kFigureScheme = QStringLiteral("kvscope-figure:");

class SvgTextObject : public QObject, public QTextObjectInterface {
  Q_OBJECT
  Q_INTERFACES(QTextObjectInterface)

 public:
  // The chart's natural size at 96 px per inch of the layout's device (the PDF writer), shrunk
  // to the text width.
  QSizeF intrinsicSize(QTextDocument* doc, int, const QTextFormat&) override {
    const QPaintDevice* dev = doc->documentLayout()->paintDevice();
    const double dpi = dev ? dev->logicalDpiX() : 96.0;
    QSizeF size(kChartWidthPx * dpi / 96.0, kChartHeightPx * dpi / 96.0);
    const double text_width = doc->pageSize().width() - 2 * doc->documentMargin();
    if (text_width > 0 && size.width() > text_width) size *= text_width / size.width();
    return size;
  }

  void drawObject(QPainter* painter, const QRectF& rect, QTextDocument*, int,
                  const QTextFormat& format) override {
    QSvgRenderer svg(format.property(kSvgDataProperty).toByteArray());
    svg.render(painter, rect);
  }
};

QString esc(const std::string& s) { return QString::fromStdString(xml_escape(s)); }

// The report in the HTML subset QTextDocument understands; figures are <img> placeholders that
// are swapped for SVG objects once the document is built.
QString qt_html(const Document& doc) {
  QString h = "<html><body><h1>" + esc(doc.title) + "</h1>";
  int figure = 0;
  for (const auto& block : doc.blocks) {
    if (const auto* hd = std::get_if<Heading>(&block)) {
      const QString tag = "h" + QString::number(hd->level < 1   ? 2
                                                : hd->level > 3 ? 4
                                                                : hd->level + 1);
      h += "<" + tag + ">" + esc(hd->text) + "</" + tag + ">";
    } else if (const auto* p = std::get_if<Paragraph>(&block)) {
      h += "<p>" + esc(p->text) + "</p>";
    } else if (const auto* l = std::get_if<Bullets>(&block)) {
      h += "<ul>";
      for (const auto& item : l->items) h += "<li>" + esc(item) + "</li>";
      h += "</ul>";
    } else if (const auto* t = std::get_if<Table>(&block)) {
      if (!t->caption.empty()) h += "<p><b>" + esc(t->caption) + "</b></p>";
      h += "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\" "
           "style=\"border-color:#bbbbbb; border-style:solid\"><tr>";
      for (const auto& c : t->header) h += "<th bgcolor=\"#eef2f6\">" + esc(c) + "</th>";
      h += "</tr>";
      for (const auto& row : t->rows) {
        h += "<tr>";
        for (size_t c = 0; c < row.size(); ++c) {
          const bool num = c < t->numeric.size() && t->numeric[c];
          h += QString(num ? "<td align=\"right\">" : "<td>") + esc(row[c]) + "</td>";
        }
        h += "</tr>";
      }
      h += "</table>";
    } else if (const auto* f = std::get_if<Figure>(&block)) {
      h += "<p><img src=\"" + kFigureScheme + QString::number(figure++) + "\"/></p>";
      h += "<p><i>" + esc(f->caption) + "</i></p>";
    }
  }
  return h + "</body></html>";
}

// Replaces every placeholder image with an SVG object carrying that figure's SVG. Placeholders
// are found first and replaced from the end, so edits do not move the ones still to do.
int swap_in_figures(QTextDocument& qdoc, const std::vector<const Figure*>& figures) {
  struct Spot {
    int position, length;
    size_t figure;
  };
  std::vector<Spot> spots;
  for (QTextBlock b = qdoc.begin(); b.isValid(); b = b.next()) {
    for (auto it = b.begin(); !it.atEnd(); ++it) {
      const QTextFragment frag = it.fragment();
      if (!frag.charFormat().isImageFormat()) continue;
      const QString name = frag.charFormat().toImageFormat().name();
      if (!name.startsWith(kFigureScheme)) continue;
      const auto index = static_cast<size_t>(name.mid(kFigureScheme.size()).toInt());
      if (index < figures.size()) spots.push_back({frag.position(), frag.length(), index});
    }
  }
  for (auto it = spots.rbegin(); it != spots.rend(); ++it) {
    QTextCharFormat svg_format;
    svg_format.setObjectType(kSvgObjectType);
    svg_format.setProperty(kSvgDataProperty, QByteArray::fromStdString(figures[it->figure]->svg));
    QTextCursor cursor(&qdoc);
    cursor.setPosition(it->position);
    cursor.setPosition(it->position + it->length, QTextCursor::KeepAnchor);
    cursor.insertText(QString(QChar::ObjectReplacementCharacter), svg_format);
  }
  return static_cast<int>(spots.size());
}

QtMessageHandler g_previous_handler = nullptr;

// Qt's offscreen platform notes on stderr that XDG_RUNTIME_DIR is unset, which says nothing
// about the report; every other message goes where it went before.
void drop_runtime_dir_notice(QtMsgType type, const QMessageLogContext& ctx, const QString& msg) {
  if (msg.contains(QStringLiteral("XDG_RUNTIME_DIR"))) return;
  if (g_previous_handler)
    g_previous_handler(type, ctx, msg);
  else
    std::fprintf(stderr, "%s\n", qPrintable(msg));
}

// QTextDocument needs a QGuiApplication (fonts). The CLI has none, so one is made on the
// offscreen platform; a GUI that calls this already has its own.
void ensure_gui_application() {
  if (QCoreApplication::instance()) return;
  g_previous_handler = qInstallMessageHandler(drop_runtime_dir_notice);
  if (!std::getenv("QT_QPA_PLATFORM")) ::setenv("QT_QPA_PLATFORM", "offscreen", 0);
  static int argc = 1;
  static char name[] = "kvscope";
  static char* argv[] = {name, nullptr};
  static QGuiApplication* app = new QGuiApplication(argc, argv);  // lives until exit
  (void)app;
}

}  // namespace

bool pdf_supported() { return true; }

void render_pdf(const Document& doc, std::ostream& out) {
  ensure_gui_application();
  QByteArray bytes;
  {
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    QPdfWriter pdf(&buffer);
    pdf.setTitle(QString::fromStdString(doc.title));
    pdf.setCreator("kvscope");
    pdf.setPageLayout(QPageLayout(QPageSize(QPageSize::A4), QPageLayout::Portrait,
                                  QMarginsF(18, 15, 18, 15), QPageLayout::Millimeter));

    // Laid out directly on the PDF device, page by page (QTextDocument::print would lay out a
    // copy whose page size is known only after the figures were sized).
    QTextDocument qdoc;
    SvgTextObject handler;
    qdoc.documentLayout()->setPaintDevice(&pdf);
    qdoc.documentLayout()->registerHandler(kSvgObjectType, &handler);
    const double footer = pdf.logicalDpiY() * 0.3;  // room for the page number
    const QSizeF page(pdf.width(), pdf.height() - footer);
    qdoc.setPageSize(page);
    qdoc.setDocumentMargin(0);
    qdoc.setDefaultFont(QFont("DejaVu Sans", 9));
    qdoc.setDefaultStyleSheet(
        "h1 { font-size: 18pt; } h2 { font-size: 14pt; } "
        "h3 { font-size: 11pt; } th { font-weight: bold; }");
    qdoc.setHtml(qt_html(doc));
    const auto figures = doc.figures();
    if (swap_in_figures(qdoc, figures) != static_cast<int>(figures.size()))
      throw std::runtime_error("PDF: could not place every figure in the document");

    QPainter painter(&pdf);
    if (!painter.isActive()) throw std::runtime_error("PDF: cannot paint on the PDF writer");
    const int pages = qdoc.pageCount();
    for (int i = 0; i < pages; ++i) {
      if (i > 0) pdf.newPage();
      painter.save();
      painter.translate(0, -page.height() * i);
      qdoc.drawContents(&painter, QRectF(QPointF(0, page.height() * i), page));
      painter.restore();
      painter.setFont(QFont("DejaVu Sans", 8));
      painter.drawText(QRectF(0, page.height(), page.width(), footer),
                       Qt::AlignRight | Qt::AlignBottom, QString("%1 / %2").arg(i + 1).arg(pages));
    }
    painter.end();
  }
  if (bytes.isEmpty()) throw std::runtime_error("PDF: Qt produced no output");
  out.write(bytes.constData(), bytes.size());
}

}  // namespace kvscope::report

// Under AddressSanitizer: fontconfig (loaded by Qt for the PDF's fonts) keeps allocations it
// never frees, which LeakSanitizer would report against every program that writes a PDF. They
// are the system library's, not kvscope's, so they are suppressed here, by library name only.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif
#endif

#include "pdf_qt.moc"
