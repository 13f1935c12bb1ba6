#include "gui/number_table.h"

#include <cmath>

#include <QSaveFile>

namespace kvscope::gui {

void NumberTable::set(QStringList row_headers, QStringList column_headers,
                      std::vector<std::vector<double>> values,
                      std::vector<std::vector<QString>> shown) {
  beginResetModel();
  rows_ = std::move(row_headers);
  cols_ = std::move(column_headers);
  values_ = std::move(values);
  shown_ = std::move(shown);
  backgrounds_.clear();
  endResetModel();
}

void NumberTable::set_backgrounds(std::vector<std::vector<QColor>> backgrounds) {
  backgrounds_ = std::move(backgrounds);
  if (rowCount() > 0 && columnCount() > 0)
    emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1),
                     {Qt::BackgroundRole, Qt::ForegroundRole});
}

void NumberTable::reset() { set({}, {}, {}, {}); }

int NumberTable::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(values_.size());
}

int NumberTable::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(cols_.size());
}

QVariant NumberTable::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount()) return {};
  const auto r = static_cast<std::size_t>(index.row()),
             c = static_cast<std::size_t>(index.column());
  if (c >= values_[r].size()) return {};
  switch (role) {
    case Qt::DisplayRole:
      return shown_[r][c];
    case Qt::ToolTipRole:
      return QString::number(values_[r][c], 'g', 17);
    case Qt::TextAlignmentRole:
      return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case kRawRole:
      return values_[r][c];
    case Qt::BackgroundRole:
    case Qt::ForegroundRole: {
      // A coloured cell keeps dark text, also under a dark palette.
      if (r >= backgrounds_.size() || c >= backgrounds_[r].size() || !backgrounds_[r][c].isValid())
        return {};
      return role == Qt::BackgroundRole ? QVariant(backgrounds_[r][c])
                                        : QVariant(QColor(Qt::black));
    }
    default:
      return {};
  }
}

QVariant NumberTable::headerData(int section, Qt::Orientation o, int role) const {
  if (role != Qt::DisplayRole) return {};
  const QStringList& h = o == Qt::Horizontal ? cols_ : rows_;
  return section >= 0 && section < h.size() ? QVariant(h[section]) : QVariant();
}

QString NumberTable::csv(const QString& corner) const {
  auto quote = [](QString s) {
    if (s.contains(',') || s.contains('"') || s.contains('\n'))
      s = '"' + s.replace('"', "\"\"") + '"';
    return s;
  };
  QStringList header{quote(corner)};
  for (const QString& c : cols_) header << quote(c);
  QString out = header.join(',') + '\n';
  for (std::size_t r = 0; r < values_.size(); ++r) {
    QStringList line{
        quote(r < static_cast<std::size_t>(rows_.size()) ? rows_[static_cast<int>(r)] : QString())};
    // An empty cell for a value that does not exist (NaN), e.g. a difference from a baseline
    // that was not replayed.
    for (double v : values_[r]) line << (std::isnan(v) ? QString() : QString::number(v, 'g', 17));
    out += line.join(',') + '\n';
  }
  return out;
}

bool NumberTable::save_csv(const QString& path, const QString& corner, QString* error) const {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text) || f.write(csv(corner).toUtf8()) < 0 ||
      !f.commit()) {
    if (error) *error = tr("%1: cannot write: %2").arg(path, f.errorString());
    return false;
  }
  return true;
}

}  // namespace kvscope::gui
