#include "sim/report/document.h"

#include "sim/report/svg_chart.h"

namespace kvscope::report {

std::vector<const Figure*> Document::figures() const {
  std::vector<const Figure*> out;
  for (const auto& b : blocks)
    if (const auto* f = std::get_if<Figure>(&b)) out.push_back(f);
  return out;
}

namespace {

bool is_numeric(const Table& t, size_t col) { return col < t.numeric.size() && t.numeric[col]; }

// The SVG without an XML declaration, so it can sit inside the HTML body.
std::string inline_svg(const std::string& svg) {
  if (svg.rfind("<?xml", 0) == 0) {
    const auto end = svg.find("?>");
    if (end != std::string::npos) return svg.substr(end + 2);
  }
  return svg;
}

// Markdown table cells: pipes would split the cell, newlines would end the row.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

}  // namespace

void render_html(const Document& doc, std::ostream& out) {
  out << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
      << "<meta charset=\"utf-8\"/>\n<title>" << xml_escape(doc.title) << "</title>\n"
      << "<style>\n"
         "body { font-family: 'DejaVu Sans', Arial, sans-serif; max-width: 1000px; margin: 2em "
         "auto; padding: 0 1em; color: #222; }\n"
         "table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }\n"
         "th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }\n"
         "th { background: #eef2f6; }\n"
         "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
         "figure { margin: 1em 0 2em; } figcaption { font-size: 0.9em; color: #555; }\n"
         "figure svg { max-width: 100%; height: auto; }\n"
         "caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }\n"
         "</style>\n</head>\n<body>\n"
      << "<h1>" << xml_escape(doc.title) << "</h1>\n";
  for (const auto& block : doc.blocks) {
    if (const auto* h = std::get_if<Heading>(&block)) {
      const int lv = h->level < 1 ? 1 : h->level > 3 ? 3 : h->level;
      out << "<h" << lv + 1 << ">" << xml_escape(h->text) << "</h" << lv + 1 << ">\n";
    } else if (const auto* p = std::get_if<Paragraph>(&block)) {
      out << "<p>" << xml_escape(p->text) << "</p>\n";
    } else if (const auto* l = std::get_if<Bullets>(&block)) {
      out << "<ul>\n";
      for (const auto& item : l->items) out << "<li>" << xml_escape(item) << "</li>\n";
      out << "</ul>\n";
    } else if (const auto* t = std::get_if<Table>(&block)) {
      out << "<table>\n";
      if (!t->caption.empty()) out << "<caption>" << xml_escape(t->caption) << "</caption>\n";
      out << "<thead><tr>";
      for (const auto& h2 : t->header) out << "<th>" << xml_escape(h2) << "</th>";
      out << "</tr></thead>\n<tbody>\n";
      for (const auto& row : t->rows) {
        out << "<tr>";
        for (size_t c = 0; c < row.size(); ++c)
          out << (is_numeric(*t, c) ? "<td class=\"num\">" : "<td>") << xml_escape(row[c])
              << "</td>";
        out << "</tr>\n";
      }
      out << "</tbody>\n</table>\n";
    } else if (const auto* f = std::get_if<Figure>(&block)) {
      out << "<figure id=\"" << xml_escape(f->id) << "\">\n"
          << inline_svg(f->svg) << "<figcaption>" << xml_escape(f->caption)
          << "</figcaption>\n</figure>\n";
    }
  }
  out << "</body>\n</html>\n";
}

void render_markdown(const Document& doc, const std::string& figure_prefix, std::ostream& out) {
  out << "# " << doc.title << "\n\n";
  for (const auto& block : doc.blocks) {
    if (const auto* h = std::get_if<Heading>(&block)) {
      out << std::string(static_cast<size_t>(h->level < 1   ? 2
                                             : h->level > 3 ? 4
                                                            : h->level + 1),
                         '#')
          << " " << h->text << "\n\n";
    } else if (const auto* p = std::get_if<Paragraph>(&block)) {
      out << p->text << "\n\n";
    } else if (const auto* l = std::get_if<Bullets>(&block)) {
      for (const auto& item : l->items) out << "- " << item << "\n";
      out << "\n";
    } else if (const auto* t = std::get_if<Table>(&block)) {
      if (!t->caption.empty()) out << "**" << t->caption << "**\n\n";
      out << "|";
      for (const auto& h2 : t->header) out << " " << md_cell(h2) << " |";
      out << "\n|";
      for (size_t c = 0; c < t->header.size(); ++c)
        out << (is_numeric(*t, c) ? " ---: |" : " --- |");
      out << "\n";
      for (const auto& row : t->rows) {
        out << "|";
        for (const auto& cell : row) out << " " << md_cell(cell) << " |";
        out << "\n";
      }
      out << "\n";
    } else if (const auto* f = std::get_if<Figure>(&block)) {
      out << "![" << md_cell(f->caption) << "](" << figure_prefix << "." << f->id << ".svg)\n\n"
          << "*" << f->caption << "*\n\n";
    }
  }
}

}  // namespace kvscope::report
