#include "gui/file_kind.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <nlohmann/json.hpp>

namespace kvscope::gui {

namespace {

// Which file of a `kvscope check --out` folder a path is.
enum class CheckRole { none, folder, summary, full_json, steps };

// Configs, profiles, sessions and check summaries are small; refuse to slurp anything that is not.
constexpr qint64 kMaxJsonBytes = qint64{256} << 20;
// The first line of a .csv or .jsonl tells a check's steps from a trace; a longer one is a trace.
constexpr qint64 kMaxFirstLineBytes = qint64{1} << 20;

QByteArray first_line(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.readLine(kMaxFirstLineBytes).trimmed();
}

// steps.csv (sim/check/check_report.h) names its columns; no trace format has these.
bool is_steps_csv_header(const QByteArray& line) {
  const QList<QByteArray> cols = line.split(',');
  for (const char* c : {"method", "step", "kind", "predicted_ms", "measured_ms"})
    if (!cols.contains(QByteArray(c))) return false;
  return true;
}

// steps.jsonl starts with {"header": {..., "replay_steps": [...]}}; a trace line is a request.
bool is_steps_jsonl_header(const QByteArray& line) {
  const auto j = nlohmann::json::parse(line.constBegin(), line.constEnd(), nullptr, false);
  if (!j.is_object()) return false;
  const auto h = j.find("header");
  return h != j.end() && h->is_object() && h->contains("replay_steps");
}

FileKind classify(const QString& path, QString* why, CheckRole* role) {
  *role = CheckRole::none;
  const QFileInfo info(path);
  auto fail = [&](const QString& reason) {
    if (why) *why = QStringLiteral("%1: %2").arg(path, reason);
    return FileKind::unknown;
  };
  if (!info.exists()) return fail(QObject::tr("no such file"));
  if (info.isDir()) {
    // A folder is a check result when the summary it holds is one (by its content).
    const QDir dir(info.absoluteFilePath());
    for (const char* name : {"check_summary.json", "check.json"}) {
      const QString inner = dir.filePath(name);
      if (!QFileInfo(inner).isFile()) continue;
      QString inner_why;
      CheckRole inner_role;
      const FileKind k = classify(inner, &inner_why, &inner_role);
      if (k == FileKind::check_result) {
        *role = CheckRole::folder;
        return k;
      }
      return fail(k == FileKind::unknown ? inner_why
                                         : QObject::tr("%1 is a %2, not a kvscope check summary")
                                               .arg(inner, file_kind_name(k)));
    }
    return fail(
        QObject::tr("a folder, but not a kvscope check result (no check_summary.json in it)"));
  }
  if (!info.isFile()) return fail(QObject::tr("not a regular file"));
  const QString ext = info.suffix().toLower();
  // Traces are line-oriented and may be large: the extension decides, the reader checks content.
  // Only the first line is looked at, for the steps a check wrote.
  if (ext == "csv") {
    if (!is_steps_csv_header(first_line(path))) return FileKind::trace;
    *role = CheckRole::steps;
    return FileKind::check_result;
  }
  if (ext == "jsonl" || ext == "ndjson") {
    if (!is_steps_jsonl_header(first_line(path))) return FileKind::trace;
    *role = CheckRole::steps;
    return FileKind::check_result;
  }
  if (ext != "json")
    return fail(
        QObject::tr("expected a trace (.jsonl, .csv), a model config.json, a calibration "
                    "profile (.json), a session (.json) or a kvscope check result (its folder "
                    "or check_summary.json)"));
  if (info.size() > kMaxJsonBytes) return fail(QObject::tr("too large for a .json input"));
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly))
    return fail(QObject::tr("cannot read: %1").arg(f.errorString()));
  const QByteArray bytes = f.readAll();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.constBegin(), bytes.constEnd());
  } catch (const nlohmann::json::parse_error& e) {
    const qsizetype upto = std::min<qsizetype>(static_cast<qsizetype>(e.byte), bytes.size());
    const qsizetype line = 1 + bytes.left(upto).count('\n');
    return fail(QObject::tr("line %1: not valid JSON (%2)").arg(line).arg(e.what()));
  }
  if (!j.is_object()) return fail(QObject::tr("expected a JSON object at the top"));
  if (j.contains("kvscope_session")) return FileKind::session;
  // Before profiles: a check summary has a "device" too.
  if (j.contains("kvscope_check")) {
    // check.json is the summary with more beside it (the run, the worst steps).
    *role = j.contains("worst_steps") ? CheckRole::full_json : CheckRole::summary;
    return FileKind::check_result;
  }
  if (j.contains("benchmarks") || j.contains("device") || j.contains("context"))
    return FileKind::profile;
  if (j.contains("num_hidden_layers") || j.contains("hidden_size") || j.contains("model_type"))
    return FileKind::model_config;
  return fail(
      QObject::tr("a JSON object that is neither a session (kvscope_session), a calibration "
                  "profile (benchmarks), a model config (num_hidden_layers) nor a check "
                  "summary (kvscope_check)"));
}

}  // namespace

QString file_kind_name(FileKind k) {
  switch (k) {
    case FileKind::trace:
      return QObject::tr("trace");
    case FileKind::model_config:
      return QObject::tr("model config");
    case FileKind::profile:
      return QObject::tr("calibration profile");
    case FileKind::session:
      return QObject::tr("session");
    case FileKind::check_result:
      return QObject::tr("check result");
    case FileKind::unknown:
      return QObject::tr("unknown file");
  }
  return {};
}

FileKind classify_file(const QString& path, QString* why) {
  CheckRole role;
  return classify(path, why, &role);
}

std::optional<CheckFiles> locate_check_files(const QString& path, QString* why) {
  CheckRole role;
  QString kind_why;
  const FileKind k = classify(path, &kind_why, &role);
  if (k != FileKind::check_result) {
    if (why)
      *why = k == FileKind::unknown
                 ? kind_why
                 : QObject::tr("%1: a %2, not a kvscope check result").arg(path, file_kind_name(k));
    return std::nullopt;
  }
  const QFileInfo info(path);
  CheckFiles f;
  QDir folder = info.absoluteDir();
  if (role == CheckRole::summary) {
    f.opened = f.summary = info.absoluteFilePath();
  } else {
    // Any other file of the folder stands for the folder, whose summary is read.
    if (role == CheckRole::folder) folder = QDir(info.absoluteFilePath());
    f.opened = folder.absolutePath();
    for (const char* name : {"check_summary.json", "check.json"})
      if (QFileInfo(folder.filePath(name)).isFile()) {
        f.summary = folder.filePath(name);
        break;
      }
    if (f.summary.isEmpty()) {
      if (why)
        *why = QObject::tr("%1: no check_summary.json beside it (kvscope check --out writes one)")
                   .arg(folder.absolutePath());
      return std::nullopt;
    }
  }
  if (QFileInfo(folder.filePath("steps.csv")).isFile()) f.steps_csv = folder.filePath("steps.csv");
  return f;
}

}  // namespace kvscope::gui
