// How the registry (registry.cpp) reaches each backend. The CPU backend is always built. The
// CUDA backend's two functions are defined in kernels/cuda/ when it is built, and otherwise in
// cuda_absent.cpp, so nothing outside kernels/ needs an #ifdef.
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace kvscope::kernels {

std::unique_ptr<Backend> make_cpu_backend();

// Empty when a CUDA device can be used here; otherwise why not ("built without CUDA",
// "no CUDA device: <driver message>", ...).
std::string cuda_unavailable_reason();
// Throws std::runtime_error carrying cuda_unavailable_reason() when no device can be used.
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace kvscope::kernels
