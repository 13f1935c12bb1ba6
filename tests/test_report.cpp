// Report rendering: SVG charts, the HTML/Markdown/PDF renderers of a document.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "page_image.h"
#include "sim/report/document.h"
#include "sim/report/svg_chart.h"

using namespace kvscope::report;
namespace fs = std::filesystem;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::string temp_path(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/kvscope-report-" + std::to_string(::getpid());
  fs::create_directories(dir);
  return dir + "/" + name;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// xmllint (libxml2-utils, installed by scripts/setup.sh) as the well-formedness check.
int xmllint(const std::string& path, bool quiet = false) {
  return std::system(("xmllint --noout '" + path + "'" + (quiet ? " 2>/dev/null" : "")).c_str());
}

Document sample_document() {
  Document d;
  d.title = "Plan <for> \"tests\" & more";
  d.heading(1, "Answers");
  d.paragraph("Text with <script>alert(1)</script> & ampersands.");
  d.bullets({"first | piped", "second"});
  Table t;
  t.caption = "A table";
  t.header = {"method", "rate"};
  t.numeric = {false, true};
  t.rows = {{"baseline", "1.5"}, {"fourier|ccv", "3.25"}};
  d.table(t);
  LineChart l;
  l.title = "Chart <one>";
  l.x_label = "x";
  l.y_label = "y";
  l.series = {{"a", {1, 2, 3}, {1, 4, 9}, ""}, {"b", {1, 2, 3}, {2, 3, 4}, ""}};
  l.references = {{"SLO", 5}};
  d.figure({"one", "Caption of one", svg_line_chart(l)});
  BarChart b;
  b.title = "Bars";
  b.categories = {"baseline", "fourier"};
  b.series_names = {"s"};
  b.values = {{3, 5}};
  d.figure({"two", "Caption of two", svg_bar_chart(b)});
  return d;
}

}  // namespace

TEST(SvgChart, OnePolylinePerSeriesAndGapsSplitThem) {
  LineChart c;
  c.title = "t";
  c.series = {{"a", {1, 2, 3, 4}, {1, 2, 3, 4}, ""}, {"b", {1, 2, 3, 4, 5}, {1, NAN, 3, 4, 5}, ""}};
  const std::string svg = svg_line_chart(c);
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // a; b split at the NaN into [1] (marker only), [3..5]
  EXPECT_EQ(count(svg, "<circle"), 8u);    // every finite point has a marker
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(SvgChart, LogAxesDropNonPositivePoints) {
  LineChart c;
  c.log_x = c.log_y = true;
  c.series = {{"a", {0, 1, 10, 100}, {5, 5, -1, 50}, ""}};
  const std::string svg = svg_line_chart(c);
  EXPECT_EQ(count(svg, "<circle"), 2u);             // (1,5) and (100,50)
  EXPECT_NE(svg.find(">100<"), std::string::npos);  // a decade tick
}

TEST(SvgChart, ExplicitColoursOverrideThePalette) {
  LineChart l;
  l.series = {{"a", {1, 2}, {1, 2}, "#123456"}, {"b", {1, 2}, {2, 1}, ""}};
  const std::string line = svg_line_chart(l);
  EXPECT_NE(line.find("stroke=\"#123456\""), std::string::npos);
  EXPECT_NE(line.find(std::string("stroke=\"") + series_colour(1)), std::string::npos);
  BarChart b;
  b.categories = {"x", "y"};
  b.series_names = {"only"};
  b.values = {{1, 2}};
  b.category_colours = {"#aa0000", "#00aa00"};
  const std::string bars = svg_bar_chart(b);
  EXPECT_NE(bars.find("fill=\"#aa0000\""), std::string::npos);
  EXPECT_NE(bars.find("fill=\"#00aa00\""), std::string::npos);
}

TEST(SvgChart, EmptyChartSaysSo) {
  EXPECT_NE(svg_line_chart(LineChart{}).find("no data"), std::string::npos);
  EXPECT_NE(svg_bar_chart(BarChart{}).find("no data"), std::string::npos);
}

TEST(SvgChart, BarsAndTitlesAreEscapedAndWellFormed) {
  BarChart b;
  b.title = "rate <&> \"x\"";
  b.categories = {"a", "b", "c"};
  b.series_names = {"s1", "s2"};
  b.values = {{1, 2, 3}, {4, NAN, 6}};
  const std::string svg = svg_bar_chart(b);
  EXPECT_EQ(count(svg, "<rect"), 1u + 5u);  // background + five finite bars
  EXPECT_NE(svg.find("rate &lt;&amp;&gt; &quot;x&quot;"), std::string::npos);
  const std::string path = temp_path("bars.svg");
  write(path, svg);
  EXPECT_EQ(xmllint(path), 0);
}

TEST(SvgChart, ScatterDrawsEachSeriesShapeAndClipsItsLines) {
  ScatterChart c;
  c.title = "pred <vs> meas";
  c.log_x = c.log_y = c.same_range = true;
  c.series = {{{1, 10, 100}, {1.1, 9, 110}, "#aa0000", Marker::circle},
              {{2, -1, 20}, {2, 3, NAN}, "#00aa00", Marker::square},  // one point on log axes
              {{5}, {5}, "#0000aa", Marker::triangle},
              {{50}, {45}, "#0000aa", Marker::diamond}};
  c.lines = {{1.0, false}, {1.1, true}, {0.9, true}, {-1, true}};  // the last: no such line
  c.legend = {{LegendEntry::Key::swatch, Marker::circle, "#aa0000", "red & co", ""},
              {LegendEntry::Key::marker, Marker::diamond, "", "diamonds", "median 1%"}};
  const std::string svg = svg_scatter_chart(c);
  EXPECT_EQ(count(svg, "fill-opacity=\"0.6\""), 3u + 1u + 1u + 1u);
  EXPECT_EQ(count(svg, "<circle"), 3u);
  EXPECT_EQ(count(svg, "<polygon"), 2u + 1u);  // the triangle, the diamond and its legend key
  EXPECT_EQ(count(svg, "stroke-dasharray=\"4,3\""), 2u);
  EXPECT_NE(svg.find("red &amp; co"), std::string::npos);
  EXPECT_NE(svg.find(">median 1%<"), std::string::npos);
  EXPECT_NE(svg.find("height=\"" + std::to_string(kScatterHeightPx) + "\""), std::string::npos);
  // One range on both axes: 1 to 1000 (the points span 1 to 110), so y = x runs corner to
  // corner of the plot and the 1.1x line leaves it through the top edge.
  EXPECT_NE(svg.find(">1000<"), std::string::npos);
  const std::string path = temp_path("scatter.svg");
  write(path, svg);
  EXPECT_EQ(xmllint(path), 0);
  EXPECT_NE(svg_scatter_chart(ScatterChart{}).find("no data"), std::string::npos);
}

TEST(SvgChart, TickLabels) {
  EXPECT_EQ(tick_label(0), "0");
  EXPECT_EQ(tick_label(1500), "1500");
  EXPECT_EQ(tick_label(1000), "1000");
  EXPECT_EQ(tick_label(1234.5), "1.23e+03");
  EXPECT_EQ(tick_label(20000), "20k");
  EXPECT_EQ(tick_label(3.2e6), "3.2M");
  EXPECT_EQ(tick_label(0.25), "0.25");
  EXPECT_EQ(tick_label(131072), "131k");
}

TEST(Document, HtmlIsWellFormedAndEscaped) {
  std::ostringstream out;
  render_html(sample_document(), out);
  const std::string html = out.str();
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(count(html, "<svg "), 2u);
  EXPECT_EQ(count(html, "<tr>"), 3u);
  EXPECT_NE(html.find("<td class=\"num\">3.25</td>"), std::string::npos);
  const std::string path = temp_path("doc.html");
  write(path, html);
  EXPECT_EQ(xmllint(path), 0) << html;
  // The check must be able to fail: a broken tag is rejected.
  write(path, html.substr(0, html.size() / 2));
  EXPECT_NE(xmllint(path, true), 0);
}

TEST(Document, MarkdownReferencesFiguresAndEscapesPipes) {
  std::ostringstream out;
  render_markdown(sample_document(), "report", out);
  const std::string md = out.str();
  EXPECT_NE(md.find("](report.one.svg)"), std::string::npos);
  EXPECT_NE(md.find("](report.two.svg)"), std::string::npos);
  EXPECT_NE(md.find("| fourier\\|ccv | 3.25 |"), std::string::npos);
  EXPECT_NE(md.find("| --- | ---: |"), std::string::npos);
}

TEST(Document, PdfRendersTextAndCharts) {
  if (!pdf_supported()) {
    std::ostringstream sink;
    EXPECT_THROW(render_pdf(sample_document(), sink), std::runtime_error);
    GTEST_SKIP() << "built without Qt 6: PDF output is refused, as checked above";
  }
  const std::string path = temp_path("doc.pdf");
  {
    std::ofstream out(path, std::ios::binary);
    render_pdf(sample_document(), out);
  }
  std::ifstream in(path, std::ios::binary);
  std::string head(5, '\0');
  in.read(head.data(), 5);
  EXPECT_EQ(head, "%PDF-");
  std::string error;
  const auto page = kvscope::testing::render_pdf_page(path, 1, 60, error);
  ASSERT_GT(page.width, 0) << error;
  EXPECT_GT(page.fraction_non_white(), 0.01);
  // The charts' series colours are on the page (text alone is black).
  EXPECT_GT(page.fraction_coloured(), 0.001);
}
