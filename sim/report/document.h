// A report as a flat list of blocks (headings, paragraphs, lists, tables, figures), written once
// and rendered to HTML, Markdown or PDF. Renderers share the content and the SVG of each figure,
// so the formats cannot drift apart. All text is plain: renderers escape it.
#pragma once

#include <ostream>
#include <string>
#include <variant>
#include <vector>

namespace kvscope::report {

struct Heading {
  int level = 2;  // 1..3
  std::string text;
};

struct Paragraph {
  std::string text;
};

struct Bullets {
  std::vector<std::string> items;
};

struct Table {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> numeric;  // per column: right-aligned; may be shorter than header
};

struct Figure {
  std::string id;  // short, file-name safe (Markdown writes "<stem>.<id>.svg")
  std::string caption;
  std::string svg;  // a standalone SVG document (sim/report/svg_chart.h)
};

using Block = std::variant<Heading, Paragraph, Bullets, Table, Figure>;

struct Document {
  std::string title;
  std::vector<Block> blocks;

  void heading(int level, std::string text) {
    blocks.emplace_back(Heading{level, std::move(text)});
  }
  void paragraph(std::string text) { blocks.emplace_back(Paragraph{std::move(text)}); }
  void bullets(std::vector<std::string> items) { blocks.emplace_back(Bullets{std::move(items)}); }
  void table(Table t) { blocks.emplace_back(std::move(t)); }
  void figure(Figure f) { blocks.emplace_back(std::move(f)); }
  std::vector<const Figure*> figures() const;
};

// Well-formed XHTML-compatible HTML5 (it parses as XML too), figures inlined as SVG.
void render_html(const Document& doc, std::ostream& out);

// GitHub-flavoured Markdown; figure f is referenced as "<figure_prefix>.<f.id>.svg", a file the
// caller writes beside the Markdown (Markdown cannot inline SVG portably).
void render_markdown(const Document& doc, const std::string& figure_prefix, std::ostream& out);

// PDF, figures drawn as vectors from the same SVG. Only in builds with Qt 6 (Gui, Svg):
// pdf_supported() says whether this build has it; otherwise render_pdf throws.
bool pdf_supported();
void render_pdf(const Document& doc, std::ostream& out);

}  // namespace kvscope::report
