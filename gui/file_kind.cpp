#include "gui/file_kind.h"

#include <QFile>
#include <QFileInfo>

#include <nlohmann/json.hpp>

namespace kvscope::gui {

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
    case FileKind::unknown:
      return QObject::tr("unknown file");
  }
  return {};
}

FileKind classify_file(const QString& path, QString* why) {
  const QFileInfo info(path);
  auto fail = [&](const QString& reason) {
    if (why) *why = QStringLiteral("%1: %2").arg(path, reason);
    return FileKind::unknown;
  };
  if (!info.exists()) return fail(QObject::tr("no such file"));
  if (!info.isFile()) return fail(QObject::tr("not a regular file"));
  const QString ext = info.suffix().toLower();
  // Traces are line-oriented and may be large: the extension decides, the reader checks content.
  if (ext == "jsonl" || ext == "csv" || ext == "ndjson") return FileKind::trace;
  if (ext != "json")
    return fail(
        QObject::tr("expected a trace (.jsonl, .csv), a model config.json, a "
                    "calibration profile (.json) or a session (.json)"));
  // Configs, profiles and sessions are small; refuse to slurp anything that is not.
  if (info.size() > (int64_t{256} << 20)) return fail(QObject::tr("too large for a .json input"));
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly))
    return fail(QObject::tr("cannot read: %1").arg(f.errorString()));
  const QByteArray bytes = f.readAll();
  const auto j = nlohmann::json::parse(bytes.constBegin(), bytes.constEnd(), nullptr, false);
  if (j.is_discarded()) return fail(QObject::tr("not valid JSON"));
  if (!j.is_object()) return fail(QObject::tr("expected a JSON object at the top"));
  if (j.contains("kvscope_session")) return FileKind::session;
  if (j.contains("benchmarks") || j.contains("device") || j.contains("context"))
    return FileKind::profile;
  if (j.contains("num_hidden_layers") || j.contains("hidden_size") || j.contains("model_type"))
    return FileKind::model_config;
  return fail(
      QObject::tr("a JSON object that is neither a session (kvscope_session), a "
                  "calibration profile (benchmarks) nor a model config "
                  "(num_hidden_layers)"));
}

}  // namespace kvscope::gui
