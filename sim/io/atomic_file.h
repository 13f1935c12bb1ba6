// Writing output files so that a failure or an interrupt never leaves a half-written file:
// content goes to "<path>.tmp-<pid>" beside the target, is flushed, and is renamed over it.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace kvscope {

// Calls write(stream) and renames the result onto `path`. If write throws or the stream fails,
// the temporary is removed, `path` is left as it was, and the error propagates.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace kvscope
