#include "sim/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace kvscope::report {

namespace {

constexpr double kW = kChartWidthPx, kH = kChartHeightPx;
constexpr double kLeft = 78, kRight = 24, kTop = 58, kBottom = 52;
constexpr const char* kFont = "DejaVu Sans, Arial, Helvetica, sans-serif";

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// One axis: its range in data units and where its ticks go. Log axes work in log10 space.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;  // data units

  double frac(double v) const {
    const double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo,
                 h = log ? std::log10(hi) : hi;
    return h > l ? (a - l) / (h - l) : 0.5;
  }
  bool accepts(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

double nice_step(double raw) {
  if (!(raw > 0)) return 1;
  const double e = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / e;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
}

// Ticks that cover [mn, mx]; `from_zero` pins a linear axis at 0 when the data is non-negative.
Axis make_axis(double mn, double mx, bool log, bool from_zero) {
  Axis a;
  a.log = log;
  if (!(mn <= mx)) {  // no data
    mn = log ? 1 : 0;
    mx = log ? 10 : 1;
  }
  if (log) {
    int e0 = static_cast<int>(std::floor(std::log10(mn)));
    int e1 = static_cast<int>(std::ceil(std::log10(mx)));
    if (e1 == e0) ++e1;
    a.lo = std::pow(10.0, e0);
    a.hi = std::pow(10.0, e1);
    const int every = std::max(1, (e1 - e0 + 7) / 8);
    for (int e = e0; e <= e1; e += every) {
      a.ticks.push_back(std::pow(10.0, e));
      if (e1 - e0 <= 2 && e < e1) {
        a.ticks.push_back(2 * std::pow(10.0, e));
        a.ticks.push_back(5 * std::pow(10.0, e));
      }
    }
    std::sort(a.ticks.begin(), a.ticks.end());
    return a;
  }
  if (from_zero && mn >= 0) mn = 0;
  if (mx == mn) {
    const double pad = mx == 0 ? 1 : std::abs(mx) * 0.1;
    mn -= from_zero && mn == 0 ? 0 : pad;
    mx += pad;
  }
  const double step = nice_step((mx - mn) / 5);
  a.lo = std::floor(mn / step) * step;
  a.hi = std::ceil(mx / step) * step;
  for (double t = a.lo; t <= a.hi + step * 1e-9; t += step)
    a.ticks.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return a;
}

struct Plot {
  double x0 = kLeft, x1 = kW - kRight, y0 = kH - kBottom, y1 = kTop;  // y0 bottom, y1 top
  double height = kH;                                                 // of the whole chart
  double px(const Axis& a, double v) const { return x0 + a.frac(v) * (x1 - x0); }
  double py(const Axis& a, double v) const { return y0 - a.frac(v) * (y0 - y1); }
};

void open_svg(std::ostringstream& o, const std::string& title, int height_px = kChartHeightPx) {
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.2\" baseProfile=\"tiny\" width=\""
    << kChartWidthPx << "\" height=\"" << height_px << "\" viewBox=\"0 0 " << kChartWidthPx << " "
    << height_px << "\" font-family=\"" << kFont << "\">\n"
    << "<title>" << xml_escape(title) << "</title>\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << kChartWidthPx << "\" height=\"" << height_px
    << "\" fill=\"#ffffff\"/>\n"
    << "<text x=\"" << num(kW / 2) << "\" y=\"20\" font-size=\"15\" font-weight=\"bold\" "
    << "text-anchor=\"middle\" fill=\"#222222\">" << xml_escape(title) << "</text>\n";
}

// Legend entries in rows under the title.
void legend(std::ostringstream& o, const std::vector<std::string>& names,
            const std::vector<std::string>& colours, const std::vector<bool>& dashed) {
  double x = kLeft, y = 40;
  for (size_t i = 0; i < names.size(); ++i) {
    const double w = 28 + 7.0 * static_cast<double>(names[i].size());
    if (x + w > kW - kRight && x > kLeft) {
      x = kLeft;
      y += 14;
    }
    o << "<line x1=\"" << num(x) << "\" y1=\"" << num(y - 4) << "\" x2=\"" << num(x + 18)
      << "\" y2=\"" << num(y - 4) << "\" stroke=\"" << colours[i] << "\" stroke-width=\"3\""
      << (dashed[i] ? " stroke-dasharray=\"6,4\"" : "") << "/>\n"
      << "<text x=\"" << num(x + 22) << "\" y=\"" << num(y)
      << "\" font-size=\"11\" fill=\"#222222\">" << xml_escape(names[i]) << "</text>\n";
    x += w;
  }
}

// Axes, horizontal grid lines at the y ticks, and the axis labels.
void frame(std::ostringstream& o, const Plot& p, const Axis& ya, const std::string& x_label,
           const std::string& y_label) {
  for (double t : ya.ticks) {
    const double y = p.py(ya, t);
    o << "<line x1=\"" << num(p.x0) << "\" y1=\"" << num(y) << "\" x2=\"" << num(p.x1) << "\" y2=\""
      << num(y) << "\" stroke=\"#dddddd\" stroke-width=\"1\"/>\n"
      << "<text x=\"" << num(p.x0 - 6) << "\" y=\"" << num(y + 4)
      << "\" font-size=\"11\" text-anchor=\"end\" fill=\"#444444\">" << tick_label(t)
      << "</text>\n";
  }
  o << "<line x1=\"" << num(p.x0) << "\" y1=\"" << num(p.y0) << "\" x2=\"" << num(p.x1)
    << "\" y2=\"" << num(p.y0) << "\" stroke=\"#444444\" stroke-width=\"1\"/>\n"
    << "<line x1=\"" << num(p.x0) << "\" y1=\"" << num(p.y0) << "\" x2=\"" << num(p.x0)
    << "\" y2=\"" << num(p.y1) << "\" stroke=\"#444444\" stroke-width=\"1\"/>\n";
  o << "<text x=\"" << num((p.x0 + p.x1) / 2) << "\" y=\"" << num(p.height - 10)
    << "\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222222\">" << xml_escape(x_label)
    << "</text>\n";
  const double yl = (p.y0 + p.y1) / 2;
  o << "<text x=\"16\" y=\"" << num(yl) << "\" font-size=\"12\" text-anchor=\"middle\" "
    << "fill=\"#222222\" transform=\"rotate(-90 16 " << num(yl) << ")\">" << xml_escape(y_label)
    << "</text>\n";
}

// Tick marks and labels under the x axis.
void x_ticks(std::ostringstream& o, const Plot& p, const Axis& xa) {
  for (double t : xa.ticks) {
    const double x = p.px(xa, t);
    o << "<line x1=\"" << num(x) << "\" y1=\"" << num(p.y0) << "\" x2=\"" << num(x) << "\" y2=\""
      << num(p.y0 + 4) << "\" stroke=\"#444444\" stroke-width=\"1\"/>\n"
      << "<text x=\"" << num(x) << "\" y=\"" << num(p.y0 + 17)
      << "\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444444\">" << tick_label(t)
      << "</text>\n";
  }
}

void no_data(std::ostringstream& o, const Plot& p) {
  o << "<text x=\"" << num((p.x0 + p.x1) / 2) << "\" y=\"" << num((p.y0 + p.y1) / 2)
    << "\" font-size=\"13\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n";
}

}  // namespace

const char* series_colour(size_t i) {
  // Okabe-Ito, without its yellow (too light on white paper).
  static const char* palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                  "#56B4E9", "#E69F00", "#000000"};
  return palette[i % (sizeof palette / sizeof palette[0])];
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  const char* suffix = "";
  double scaled = v;
  if (a >= 1e12) {
    scaled = v / 1e12;
    suffix = "T";
  } else if (a >= 1e9) {
    scaled = v / 1e9;
    suffix = "G";
  } else if (a >= 1e6) {
    scaled = v / 1e6;
    suffix = "M";
  } else if (a >= 1e4) {
    scaled = v / 1e3;
    suffix = "k";
  }
  char buf[32];
  // Below 10k, whole numbers print in full (1000, 2500) rather than as 1e+03.
  if (*suffix == '\0' && a >= 1000 && v == std::round(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3g%s", scaled, suffix);
  return buf;
}

std::string svg_line_chart(const LineChart& c) {
  // Data ranges over the points each axis can show.
  double xmn = std::numeric_limits<double>::infinity(), xmx = -xmn, ymn = xmn, ymx = -xmn;
  Axis probe_x, probe_y;
  probe_x.log = c.log_x;
  probe_y.log = c.log_y;
  for (const auto& s : c.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!probe_x.accepts(s.x[i]) || !probe_y.accepts(s.y[i])) continue;
      xmn = std::min(xmn, s.x[i]);
      xmx = std::max(xmx, s.x[i]);
      ymn = std::min(ymn, s.y[i]);
      ymx = std::max(ymx, s.y[i]);
    }
  }
  const bool any = xmn <= xmx;
  for (const auto& r : c.references) {
    if (any && probe_y.accepts(r.y)) {
      ymn = std::min(ymn, r.y);
      ymx = std::max(ymx, r.y);
    }
  }
  const Axis xa = make_axis(xmn, xmx, c.log_x, false);
  const Axis ya = make_axis(ymn, ymx, c.log_y, true);
  const Plot p;

  std::ostringstream o;
  open_svg(o, c.title);
  std::vector<std::string> names, colours;
  std::vector<bool> dashed;
  auto colour_of = [&](size_t i) {
    return c.series[i].colour.empty() ? std::string(series_colour(i)) : c.series[i].colour;
  };
  for (size_t i = 0; i < c.series.size(); ++i) {
    names.push_back(c.series[i].name);
    colours.push_back(colour_of(i));
    dashed.push_back(false);
  }
  for (const auto& r : c.references) {
    names.push_back(r.label);
    colours.push_back("#666666");
    dashed.push_back(true);
  }
  legend(o, names, colours, dashed);
  frame(o, p, ya, c.x_label, c.y_label);
  if (!any) {
    no_data(o, p);
    o << "</svg>\n";
    return o.str();
  }
  x_ticks(o, p, xa);
  for (const auto& r : c.references) {
    if (!ya.accepts(r.y)) continue;
    const double y = p.py(ya, r.y);
    o << "<line x1=\"" << num(p.x0) << "\" y1=\"" << num(y) << "\" x2=\"" << num(p.x1) << "\" y2=\""
      << num(y) << "\" stroke=\"#666666\" stroke-width=\"1.5\" "
      << "stroke-dasharray=\"6,4\"/>\n";
  }
  for (size_t si = 0; si < c.series.size(); ++si) {
    const auto& s = c.series[si];
    const std::string colour = colour_of(si);
    // Polyline segments between gaps, plus a marker per point (lone points stay visible).
    std::string pts;
    auto flush = [&] {
      if (pts.find(' ') != std::string::npos)
        o << "<polyline points=\"" << pts << "\" fill=\"none\" stroke=\"" << colour
          << "\" stroke-width=\"2\"/>\n";
      pts.clear();
    };
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!xa.accepts(s.x[i]) || !ya.accepts(s.y[i])) {
        flush();
        continue;
      }
      const double x = p.px(xa, s.x[i]), y = p.py(ya, s.y[i]);
      if (!pts.empty()) pts += ' ';
      pts += num(x) + "," + num(y);
      o << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"3\" fill=\"" << colour
        << "\"/>\n";
    }
    flush();
  }
  o << "</svg>\n";
  return o.str();
}

std::string svg_bar_chart(const BarChart& c) {
  double ymn = std::numeric_limits<double>::infinity(), ymx = -ymn;
  Axis probe;
  probe.log = c.log_y;
  for (const auto& row : c.values)
    for (double v : row)
      if (probe.accepts(v)) {
        ymn = std::min(ymn, v);
        ymx = std::max(ymx, v);
      }
  const bool any = ymn <= ymx;
  const Axis ya = make_axis(ymn, ymx, c.log_y, true);
  const Plot p;

  std::ostringstream o;
  open_svg(o, c.title);
  const bool per_category =
      c.values.size() == 1 && c.category_colours.size() == c.categories.size();
  auto bar_colour = [&](size_t series, size_t category) {
    return per_category ? c.category_colours[category] : std::string(series_colour(series));
  };
  if (!per_category) {
    std::vector<std::string> colours;
    for (size_t i = 0; i < c.series_names.size(); ++i) colours.push_back(series_colour(i));
    legend(o, c.series_names, colours, std::vector<bool>(c.series_names.size(), false));
  }
  frame(o, p, ya, "", c.y_label);
  if (!any || c.categories.empty()) {
    no_data(o, p);
    o << "</svg>\n";
    return o.str();
  }
  const double group_w = (p.x1 - p.x0) / static_cast<double>(c.categories.size());
  const double nser = static_cast<double>(std::max<size_t>(1, c.series_names.size()));
  const double bar_w = std::min(48.0, group_w * 0.8 / nser);
  for (size_t ci = 0; ci < c.categories.size(); ++ci) {
    const double gx = p.x0 + group_w * (static_cast<double>(ci) + 0.5);
    o << "<text x=\"" << num(gx) << "\" y=\"" << num(p.y0 + 17)
      << "\" font-size=\"11\" text-anchor=\"middle\" fill=\"#222222\">"
      << xml_escape(c.categories[ci]) << "</text>\n";
    for (size_t si = 0; si < c.values.size(); ++si) {
      if (ci >= c.values[si].size()) continue;
      const double v = c.values[si][ci];
      if (!ya.accepts(v)) continue;
      const double left = gx - bar_w * nser / 2 + bar_w * static_cast<double>(si);
      const double base = c.log_y ? p.y0 : p.py(ya, 0);
      const double top = p.py(ya, v);
      o << "<rect x=\"" << num(left + 1) << "\" y=\"" << num(std::min(top, base)) << "\" width=\""
        << num(bar_w - 2) << "\" height=\"" << num(std::abs(base - top)) << "\" fill=\""
        << bar_colour(si, ci) << "\"/>\n"
        << "<text x=\"" << num(left + bar_w / 2) << "\" y=\"" << num(std::min(top, base) - 3)
        << "\" font-size=\"10\" text-anchor=\"middle\" fill=\"#222222\">" << tick_label(v)
        << "</text>\n";
    }
  }
  o << "</svg>\n";
  return o.str();
}

namespace {

// A marker centred on (x, y), about 7 px across whatever its shape.
void marker(std::ostringstream& o, Marker m, double x, double y, const std::string& colour,
            const char* opacity) {
  const std::string fill = "fill=\"" + colour + "\" fill-opacity=\"" + opacity + "\"/>\n";
  switch (m) {
    case Marker::circle:
      o << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"3\" " << fill;
      break;
    case Marker::square:
      o << "<rect x=\"" << num(x - 3) << "\" y=\"" << num(y - 3) << "\" width=\"6\" height=\"6\" "
        << fill;
      break;
    case Marker::triangle:
      o << "<polygon points=\"" << num(x) << "," << num(y - 4) << " " << num(x - 4) << ","
        << num(y + 3) << " " << num(x + 4) << "," << num(y + 3) << "\" " << fill;
      break;
    case Marker::diamond:
      o << "<polygon points=\"" << num(x) << "," << num(y - 4) << " " << num(x + 4) << "," << num(y)
        << " " << num(x) << "," << num(y + 4) << " " << num(x - 4) << "," << num(y) << "\" "
        << fill;
      break;
  }
}

constexpr const char* kGrey = "#444444";

// The legend column right of a scatter plot; a little space between groups of keys of one kind.
void scatter_legend(std::ostringstream& o, const Plot& p, const std::vector<LegendEntry>& entries) {
  const double x = p.x1 + 16;
  double y = p.y1 + 10;
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    if (i > 0 && e.key != entries[i - 1].key) y += 8;
    const std::string colour = e.colour.empty() ? std::string(kGrey) : e.colour;
    switch (e.key) {
      case LegendEntry::Key::marker:
        marker(o, e.marker, x + 5, y - 4, colour, "1");
        break;
      case LegendEntry::Key::swatch:
        o << "<rect x=\"" << num(x) << "\" y=\"" << num(y - 9) << "\" width=\"10\" height=\"10\" "
          << "fill=\"" << colour << "\"/>\n";
        break;
      case LegendEntry::Key::line:
      case LegendEntry::Key::dashed_line:
        o << "<line x1=\"" << num(x) << "\" y1=\"" << num(y - 4) << "\" x2=\"" << num(x + 18)
          << "\" y2=\"" << num(y - 4) << "\" stroke=\"" << colour << "\" stroke-width=\"1.5\""
          << (e.key == LegendEntry::Key::dashed_line ? " stroke-dasharray=\"4,3\"" : "") << "/>\n";
        break;
    }
    o << "<text x=\"" << num(x + 24) << "\" y=\"" << num(y)
      << "\" font-size=\"11\" fill=\"#222222\">" << xml_escape(e.label) << "</text>\n";
    y += 16;
    if (!e.detail.empty()) {
      o << "<text x=\"" << num(x + 24) << "\" y=\"" << num(y)
        << "\" font-size=\"10\" fill=\"#444444\">" << xml_escape(e.detail) << "</text>\n";
      y += 16;
    }
  }
}

}  // namespace

std::string svg_scatter_chart(const ScatterChart& c) {
  double xmn = std::numeric_limits<double>::infinity(), xmx = -xmn, ymn = xmn, ymx = -xmn;
  Axis probe_x, probe_y;
  probe_x.log = c.log_x;
  probe_y.log = c.log_y;
  for (const auto& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!probe_x.accepts(s.x[i]) || !probe_y.accepts(s.y[i])) continue;
      xmn = std::min(xmn, s.x[i]);
      xmx = std::max(xmx, s.x[i]);
      ymn = std::min(ymn, s.y[i]);
      ymx = std::max(ymx, s.y[i]);
    }
  const bool any = xmn <= xmx;
  if (c.same_range) {
    xmn = ymn = std::min(xmn, ymn);
    xmx = ymx = std::max(xmx, ymx);
  }
  // A scatter's points need not start at zero: its linear axes fit the data.
  const Axis xa = make_axis(xmn, xmx, c.log_x, false);
  const Axis ya = make_axis(ymn, ymx, c.log_y, false);
  Plot p;
  p.x0 = 80;
  p.x1 = kW - 180;
  p.y1 = 50;
  p.y0 = kScatterHeightPx - 60;
  p.height = kScatterHeightPx;

  std::ostringstream o;
  open_svg(o, c.title, kScatterHeightPx);
  for (double t : xa.ticks) {
    const double x = p.px(xa, t);
    o << "<line x1=\"" << num(x) << "\" y1=\"" << num(p.y0) << "\" x2=\"" << num(x) << "\" y2=\""
      << num(p.y1) << "\" stroke=\"#dddddd\" stroke-width=\"1\"/>\n";
  }
  frame(o, p, ya, c.x_label, c.y_label);
  x_ticks(o, p, xa);
  scatter_legend(o, p, c.legend);
  if (!any) {
    no_data(o, p);
    o << "</svg>\n";
    return o.str();
  }
  for (const auto& l : c.lines) {
    if (!(l.slope > 0)) continue;
    // y = slope * x rises with x, so the part inside the plot runs from where it enters at the
    // left or bottom edge to where it leaves at the right or top edge.
    const double from = std::max(xa.lo, ya.lo / l.slope), to = std::min(xa.hi, ya.hi / l.slope);
    if (!(from < to)) continue;
    o << "<line x1=\"" << num(p.px(xa, from)) << "\" y1=\"" << num(p.py(ya, from * l.slope))
      << "\" x2=\"" << num(p.px(xa, to)) << "\" y2=\"" << num(p.py(ya, to * l.slope))
      << "\" stroke=\"" << (l.dashed ? "#888888" : kGrey) << "\" stroke-width=\"1\""
      << (l.dashed ? " stroke-dasharray=\"4,3\"" : "") << "/>\n";
  }
  // Translucent, so that where points pile up the pile shows.
  for (const auto& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (xa.accepts(s.x[i]) && ya.accepts(s.y[i]))
        marker(o, s.marker, p.px(xa, s.x[i]), p.py(ya, s.y[i]), s.colour, "0.6");
  o << "</svg>\n";
  return o.str();
}

}  // namespace kvscope::report
