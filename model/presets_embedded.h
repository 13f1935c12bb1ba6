// The model presets of model/presets/*.json, compiled into the library by CMake
// (cmake/EmbedPresets.cmake) so that the binaries need no data files at run time.
#pragma once

#include <string_view>
#include <vector>

namespace kvscope {

struct EmbeddedPreset {
  std::string_view name;         // file name without .json
  std::string_view config_json;  // the file's bytes
};

const std::vector<EmbeddedPreset>& embedded_presets();

}  // namespace kvscope
