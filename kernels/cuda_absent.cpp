// Compiled instead of kernels/cuda/ when the build has no CUDA backend.
#include <stdexcept>

#include "kernels/backend_factories.h"

namespace kvscope::kernels {

std::string cuda_unavailable_reason() {
  return "built without CUDA (configure with KVSCOPE_CUDA=ON where nvcc is installed)";
}

std::unique_ptr<Backend> make_cuda_backend() {
  throw std::runtime_error("cuda backend: " + cuda_unavailable_reason());
}

}  // namespace kvscope::kernels
