// The Analytic view: what priced it, the cost and KV charts over context length N, and the table
// of every row's numbers. It shows rows model/analytic.h computed; it computes nothing.
#pragma once

#include <vector>

#include <QList>
#include <QString>
#include <QWidget>

#include "model/analytic.h"

class QLabel;

namespace kvscope::gui {

class ChartView;
class NumberTable;

class AnalyticView : public QWidget {
  Q_OBJECT

 public:
  explicit AnalyticView(QWidget* parent = nullptr);

  // `pricing` is the line above the charts (the model and what priced its operations); the KV
  // chart draws `methods`.
  void show_rows(const std::vector<AnalyticRow>& rows, const QString& pricing,
                 const std::vector<Method>& methods);

  QList<ChartView*> charts() const { return {cost_, kv_}; }  // cost_vs_n, kv_vs_n
  NumberTable* table() const { return table_; }

 private:
  QLabel* pricing_ = nullptr;
  ChartView* cost_ = nullptr;
  ChartView* kv_ = nullptr;
  NumberTable* table_ = nullptr;
};

}  // namespace kvscope::gui
