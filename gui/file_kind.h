// What a file handed to the app (File > Open, drag and drop, the command line) is: a trace, a
// model config.json, a calibration profile or a session. Decided from the extension and, for
// .json files, from the keys at the top of the object, so a dropped file goes to the right place.
#pragma once

#include <QString>

namespace kvscope::gui {

enum class FileKind { trace, model_config, profile, session, unknown };

QString file_kind_name(FileKind k);  // "trace", "model config", ...

// For FileKind::unknown, *why says what was found (missing file, unknown keys, bad JSON).
FileKind classify_file(const QString& path, QString* why);

}  // namespace kvscope::gui
