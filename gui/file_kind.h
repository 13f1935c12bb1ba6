// What a file handed to the app (File > Open, drag and drop, the command line) is: a trace, a
// model config.json, a calibration profile, a session or a kvscope check result. Decided from
// the extension and the content (the keys at the top of a .json object, the header of a .csv,
// the first line of a .jsonl; a folder by the check summary it holds), so a dropped file goes to
// the right place.
#pragma once

#include <optional>

#include <QString>

namespace kvscope::gui {

enum class FileKind { trace, model_config, profile, session, check_result, unknown };

QString file_kind_name(FileKind k);  // "trace", "model config", ...

// For FileKind::unknown, *why says what was found (missing file, unknown keys, bad JSON and the
// line of the error).
FileKind classify_file(const QString& path, QString* why);

// The files of one `kvscope check --out` result. A check result may be opened as its folder, as
// its check_summary.json, or as another of its files (check.json, steps.csv, steps.jsonl), which
// stands for its folder; a check summary on its own (copied elsewhere) is read by itself.
struct CheckFiles {
  QString opened;     // what stands for the result (a session keeps it): the folder or the summary
  QString summary;    // check_summary.json (or, in a folder without one, check.json: a superset)
  QString steps_csv;  // steps.csv beside the summary; empty when there is none
};
// Absolute paths. Without a check result at `path`, nothing, and *why says what was found.
std::optional<CheckFiles> locate_check_files(const QString& path, QString* why);

}  // namespace kvscope::gui
