// A read-only table of numbers for a QTableView: each cell has the value shown (formatted, with
// units in the headers) and the raw value that CSV export writes at full precision.
#pragma once

#include <vector>

#include <QAbstractTableModel>
#include <QColor>
#include <QStringList>

namespace kvscope::gui {

class NumberTable : public QAbstractTableModel {
  Q_OBJECT

 public:
  using QAbstractTableModel::QAbstractTableModel;

  static constexpr int kRawRole = Qt::UserRole + 1;  // the cell's double

  // values[row][col]; shown[row][col] is its display text.
  void set(QStringList row_headers, QStringList column_headers,
           std::vector<std::vector<double>> values, std::vector<std::vector<QString>> shown);
  void reset();
  // Background colours per cell (an invalid QColor: none), e.g. a target met or missed; set after
  // set(), which clears them.
  void set_backgrounds(std::vector<std::vector<QColor>> backgrounds);

  double value(int row, int col) const { return values_.at(row).at(col); }
  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation o, int role) const override;

  // The first column holds the row headers; numbers at full precision.
  QString csv(const QString& corner) const;
  bool save_csv(const QString& path, const QString& corner, QString* error) const;

 private:
  QStringList rows_, cols_;
  std::vector<std::vector<double>> values_;
  std::vector<std::vector<QString>> shown_;
  std::vector<std::vector<QColor>> backgrounds_;
};

}  // namespace kvscope::gui
