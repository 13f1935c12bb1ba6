#include "gui/chart_view.h"

#include <cmath>
#include <limits>

#include <QAbstractBarSeries>
#include <QBarSet>
#include <QContextMenuEvent>
#include <QGraphicsSimpleTextItem>
#include <QMenu>
#include <QPainter>
#include <QSaveFile>
#include <QScatterSeries>
#include <QSvgGenerator>
#include <QToolTip>
#include <QXYSeries>

namespace kvscope::gui {

QString format_value(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e-3 && a < 1e7) return QString::number(v, 'g', a >= 1e4 ? 8 : 4);
  return QString::number(v, 'e', 3);
}

ChartView::ChartView(QString id, QString title, QWidget* parent)
    : QChartView(new QChart(), parent), id_(std::move(id)) {
  chart()->setTitle(title);
  chart()->legend()->setAlignment(Qt::AlignBottom);
  chart()->setMargins(QMargins(4, 4, 4, 4));
  setRenderHint(QPainter::Antialiasing);
  setMinimumSize(360, 260);
  setToolTip(tr("Hover a line or bar for its value; right-click to export"));
  placeholder_ = new QGraphicsSimpleTextItem(chart());
  placeholder_->setBrush(QColor(110, 110, 110));
  placeholder_->setVisible(false);
}

void ChartView::clear() {
  chart()->removeAllSeries();
  for (QAbstractAxis* a : chart()->axes()) {
    chart()->removeAxis(a);
    delete a;
  }
  categories_.clear();
  hover_text_.clear();
  notes_.clear();
  set_placeholder({});
}

void ChartView::set_axes(AxisInfo x, AxisInfo y) {
  x_ = std::move(x);
  y_ = std::move(y);
}

void ChartView::set_placeholder(const QString& text) {
  placeholder_->setText(text);
  placeholder_->setVisible(!text.isEmpty());
  place_placeholder();
}

void ChartView::place_placeholder() {
  placeholder_->setPos(chart()->plotArea().center() - placeholder_->boundingRect().center());
}

void ChartView::resizeEvent(QResizeEvent* e) {
  QChartView::resizeEvent(e);
  place_placeholder();
}

void ChartView::track(QXYSeries* s) {
  connect(s, &QXYSeries::hovered, this, [this, s](const QPointF& p, bool on) {
    hover_text_ = on ? hover_text_for(s, p) : QString();
    if (on)
      QToolTip::showText(QCursor::pos(), hover_text_, this);
    else
      QToolTip::hideText();
  });
}

void ChartView::track(QBarSet* set) {
  connect(set, &QBarSet::hovered, this, [this, set](bool on, int index) {
    hover_text_ = on ? hover_text_for(set, index) : QString();
    if (on)
      QToolTip::showText(QCursor::pos(), hover_text_, this);
    else
      QToolTip::hideText();
  });
}

QString ChartView::hover_text_for(QXYSeries* s, QPointF point) const {
  // A line: the nearest data point by x, as hovering a line gives a point between two of them.
  // Scattered points: the nearest in both coordinates, each relative to its size (they spread
  // over decades on log axes).
  const QList<QPointF> pts = s->points();
  if (pts.isEmpty()) return {};
  const bool scatter = qobject_cast<QScatterSeries*>(s) != nullptr;
  auto rel = [](double a, double b) {
    return a > 0 && b > 0 ? std::abs(std::log(a / b)) : std::abs(a - b);
  };
  qsizetype best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (qsizetype i = 0; i < pts.size(); ++i) {
    const double d =
        scatter ? rel(pts[i].x(), point.x()) + rel(pts[i].y(), point.y())
                : std::abs(pts[i].x() - point.x()) + 1e-12 * std::abs(pts[i].y() - point.y());
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  const QPointF q = pts[best];
  QString text = QStringLiteral("%1\n%2 = %3 %4\n%5 = %6 %7")
                     .arg(s->name(), x_.label, format_value(q.x()), x_.unit, y_.label,
                          format_value(q.y()), y_.unit)
                     .trimmed();
  const auto notes = notes_.constFind(s);
  if (notes != notes_.constEnd() && best < notes->size()) text += '\n' + notes->at(best);
  return text;
}

QString ChartView::hover_text_for(QBarSet* set, int index) const {
  if (index < 0 || index >= set->count()) return {};
  const QString cat = index < categories_.size() ? categories_[index] : QString::number(index);
  return QStringLiteral("%1, %2\n%3 = %4 %5")
      .arg(set->label(), cat, y_.label, format_value(set->at(index)), y_.unit);
}

QString ChartView::csv() const {
  auto quote = [](QString s) {
    if (s.contains(',') || s.contains('"') || s.contains('\n'))
      s = '"' + s.replace('"', "\"\"") + '"';
    return s;
  };
  auto full = [](double v) { return QString::number(v, 'g', 17); };
  QString out;
  const QList<QAbstractSeries*> all = chart()->series();
  bool bars = false;
  for (QAbstractSeries* s : all) bars |= qobject_cast<QAbstractBarSeries*>(s) != nullptr;
  if (bars) {
    // category, then one column per bar set: "<set> (<unit>)"
    QStringList header{quote(x_.label)};
    QList<QBarSet*> sets;
    for (QAbstractSeries* s : all)
      if (auto* b = qobject_cast<QAbstractBarSeries*>(s))
        for (QBarSet* set : b->barSets()) {
          sets.push_back(set);
          header << quote(set->label() + (y_.unit.isEmpty() ? "" : " (" + y_.unit + ")"));
        }
    out += header.join(',') + '\n';
    for (qsizetype i = 0; i < categories_.size(); ++i) {
      QStringList row{quote(categories_[i])};
      for (QBarSet* set : sets) row << (i < set->count() ? full(set->at(i)) : QString());
      out += row.join(',') + '\n';
    }
    return out;
  }
  out += QStringList{"series", quote(x_.title()), quote(y_.title())}.join(',') + '\n';
  for (QAbstractSeries* s : all)
    if (auto* xy = qobject_cast<QXYSeries*>(s))
      for (const QPointF& p : xy->points())
        out += quote(xy->name()) + ',' + full(p.x()) + ',' + full(p.y()) + '\n';
  return out;
}

namespace {
bool commit(QSaveFile& f, const QString& path, QString* error) {
  if (!f.commit()) {
    if (error) *error = QObject::tr("%1: cannot write: %2").arg(path, f.errorString());
    return false;
  }
  return true;
}
}  // namespace

bool ChartView::save_png(const QString& path, QString* error) const {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly)) {
    if (error) *error = tr("%1: cannot write: %2").arg(path, f.errorString());
    return false;
  }
  if (!const_cast<ChartView*>(this)->grab().save(&f, "PNG")) {
    if (error) *error = tr("%1: could not encode the PNG").arg(path);
    f.cancelWriting();
    return false;
  }
  return commit(f, path, error);
}

bool ChartView::save_svg(const QString& path, QString* error) const {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly)) {
    if (error) *error = tr("%1: cannot write: %2").arg(path, f.errorString());
    return false;
  }
  QSvgGenerator gen;
  gen.setOutputDevice(&f);
  gen.setSize(size());
  gen.setViewBox(rect());
  gen.setTitle(chart()->title());
  gen.setDescription(tr("kvscope-gui chart %1").arg(id_));
  {
    QPainter painter(&gen);
    const_cast<ChartView*>(this)->render(&painter);
  }
  return commit(f, path, error);
}

bool ChartView::save_csv(const QString& path, QString* error) const {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) {
    if (error) *error = tr("%1: cannot write: %2").arg(path, f.errorString());
    return false;
  }
  f.write(csv().toUtf8());
  return commit(f, path, error);
}

void ChartView::mousePressEvent(QMouseEvent* e) {
  emit activated(this);
  QChartView::mousePressEvent(e);
}

void ChartView::contextMenuEvent(QContextMenuEvent* e) {
  emit activated(this);
  QMenu menu(this);
  menu.addAction(tr("Export as PNG..."), this, [this] { emit export_requested(this, "png"); });
  menu.addAction(tr("Export as SVG..."), this, [this] { emit export_requested(this, "svg"); });
  menu.addAction(tr("Export data as CSV..."), this, [this] { emit export_requested(this, "csv"); });
  menu.exec(e->globalPos());
}

}  // namespace kvscope::gui
