// Charts as standalone SVG text, for reports. The same SVG is inlined in HTML, written beside
// Markdown and drawn into PDFs (by Qt's SVG renderer), so every format shows the same chart.
// Only elements and presentation attributes of SVG Tiny 1.2 are used (no CSS, no
// dominant-baseline), because that is what QSvgRenderer draws.
#pragma once

#include <string>
#include <vector>

namespace kvscope::report {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points (and <= 0 on log axes) are gaps
  std::string colour;        // "#rrggbb"; empty: series_colour(index)
};

// A horizontal reference line, e.g. an SLO.
struct ReferenceLine {
  std::string label;
  double y = 0;
};

struct LineChart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<Series> series;
  std::vector<ReferenceLine> references;
};

// Grouped bars: one group per category, one bar per series in each group.
struct BarChart {
  std::string title, y_label;
  bool log_y = false;
  std::vector<std::string> categories;
  std::vector<std::string> series_names;
  std::vector<std::vector<double>> values;  // [series][category]; non-finite: no bar
  // With a single series, bars may take a colour per category (e.g. one per method).
  std::vector<std::string> category_colours;
};

// Points without lines, e.g. predicted against measured step times: each series is one colour
// and one marker shape, so a point can show two categories at once (colour by one, shape by the
// other). The legend is a column right of the plot, written by the caller.
enum class Marker { circle, square, triangle, diamond };

struct ScatterSeries {
  std::vector<double> x, y;  // same length; non-finite points (and <= 0 on log axes) are left out
  std::string colour;        // "#rrggbb"
  Marker marker = Marker::circle;
};

// The line y = slope * x (slope > 0) across the part of the plot it passes through: on
// log-log axes a diagonal, e.g. y = x and, dashed, the edges of a +-10 % band around it.
struct ProportionalLine {
  double slope = 1;
  bool dashed = false;
};

// One row of a scatter chart's legend: its key (a marker shape, a colour swatch or a line
// style), its label and an optional second, indented line (e.g. the category's error figures).
struct LegendEntry {
  enum class Key { marker, swatch, line, dashed_line };
  Key key = Key::marker;
  Marker marker = Marker::circle;  // for Key::marker
  std::string colour;              // empty: grey
  std::string label, detail;
};

struct ScatterChart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  // One range for both axes, so that y = x runs corner to corner.
  bool same_range = false;
  std::vector<ScatterSeries> series;
  std::vector<ProportionalLine> lines;
  std::vector<LegendEntry> legend;
};

inline constexpr int kChartWidthPx = 720;
inline constexpr int kChartHeightPx = 380;
inline constexpr int kScatterHeightPx = 560;  // taller: a near-square plot beside its legend

std::string svg_line_chart(const LineChart& chart);
std::string svg_bar_chart(const BarChart& chart);
std::string svg_scatter_chart(const ScatterChart& chart);  // kChartWidthPx x kScatterHeightPx

// The colour of the i-th series (a palette readable in print and for common colour blindness).
const char* series_colour(size_t i);

// "&<>\"'" escaped for XML text and attribute values.
std::string xml_escape(const std::string& s);

// Short tick label: 1.5k, 20M, 0.25, 1e-05 ...
std::string tick_label(double v);

}  // namespace kvscope::report
