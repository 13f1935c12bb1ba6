// One chart of the app: a QChartView that shows a point's value with units on hover and exports
// itself as PNG, SVG or the CSV of its data. The charts.h functions fill it; it computes nothing.
#pragma once

#include <QChartView>
#include <QHash>
#include <QString>
#include <QStringList>

class QAbstractSeries;
class QBarSet;
class QGraphicsSimpleTextItem;
class QXYSeries;

namespace kvscope::gui {

struct AxisInfo {
  QString label;  // "context length N"
  QString unit;   // "tokens"; shown in the axis title and the hover text
  QString title() const { return unit.isEmpty() ? label : label + " (" + unit + ")"; }
};

class ChartView : public QChartView {
  Q_OBJECT

 public:
  // `id` names the chart in exported files ("cost_vs_n").
  ChartView(QString id, QString title, QWidget* parent = nullptr);

  const QString& id() const { return id_; }
  const AxisInfo& x_axis() const { return x_; }
  const AxisInfo& y_axis() const { return y_; }

  // Removes every series and axis; the chart keeps its title.
  void clear();
  void set_axes(AxisInfo x, AxisInfo y);
  // Categories of a bar chart (x axis), in order.
  void set_categories(const QStringList& c) { categories_ = c; }
  const QStringList& categories() const { return categories_; }

  // Hover on a series or bar set shows its value; these wire it up.
  void track(QXYSeries* s);
  void track(QBarSet* set);
  // A line of text per point of `s`, added to its hover text (e.g. which step a point is).
  void set_point_notes(const QXYSeries* s, QStringList notes) { notes_[s] = std::move(notes); }
  // The text the last hover showed (empty when the pointer left the series).
  const QString& hover_text() const { return hover_text_; }
  // What hovering at `point` (chart coordinates) over `s` shows: the nearest data point (by x
  // on a line; on a scatter series by both coordinates, relative to their size, as on log axes).
  QString hover_text_for(QXYSeries* s, QPointF point) const;
  QString hover_text_for(QBarSet* set, int index) const;

  // Exports; on failure return false and say why in *error.
  bool save_png(const QString& path, QString* error) const;
  bool save_svg(const QString& path, QString* error) const;
  bool save_csv(const QString& path, QString* error) const;
  QString csv() const;

  // Shown over the empty chart, e.g. "run a replay to see this".
  void set_placeholder(const QString& text);

 signals:
  void activated(kvscope::gui::ChartView* view);  // clicked: File > Export acts on it
  void export_requested(kvscope::gui::ChartView* view, const QString& format);  // png|svg|csv

 protected:
  void mousePressEvent(QMouseEvent* e) override;
  void contextMenuEvent(QContextMenuEvent* e) override;
  void resizeEvent(QResizeEvent* e) override;

 private:
  void place_placeholder();

  QString id_;
  AxisInfo x_, y_;
  QStringList categories_;
  QString hover_text_;
  QHash<const QXYSeries*, QStringList> notes_;
  QGraphicsSimpleTextItem* placeholder_ = nullptr;  // owned by the chart
};

QString format_value(double v);  // 4 significant digits, no exponent for ordinary magnitudes

}  // namespace kvscope::gui
