// The Fidelity view: a kvscope check result. What was checked and where above; the latency
// table (per method and step kind) beside the predicted-vs-measured chart; the memory table
// under both.
#pragma once

#include <QList>
#include <QString>
#include <QWidget>

class QLabel;

namespace kvscope::gui {

class ChartView;
class NumberTable;
struct CheckOutput;

class FidelityView : public QWidget {
  Q_OBJECT

 public:
  explicit FidelityView(QWidget* parent = nullptr);

  // Null: no check result, and the view says how to open one.
  void show_check(const CheckOutput* check);

  QList<ChartView*> charts() const { return {scatter_}; }  // pred_vs_meas
  NumberTable* latency_table() const { return latency_table_; }
  NumberTable* memory_table() const { return memory_table_; }
  QString header_text() const;  // the lines above the tables

 signals:
  void table_activated(kvscope::gui::NumberTable* table);  // clicked: File > Export acts on it

 private:
  QLabel* header_ = nullptr;
  NumberTable* latency_table_ = nullptr;
  NumberTable* memory_table_ = nullptr;
  ChartView* scatter_ = nullptr;
};

}  // namespace kvscope::gui
