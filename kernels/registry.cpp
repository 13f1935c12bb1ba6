// Picking a backend by name, the buffer sizes of the Fourier-compressed form, and the process
// setup a program runs before any backend.
#include <stdexcept>

#include "kernels/backend.h"
#include "kernels/backend_factories.h"
#include "kernels/cpu/openmp_wait.h"

namespace kvscope::kernels {

FourierBufferBytes fourier_buffer_bytes(const KvShape& s, const FourierLayout& f) {
  const int64_t c = static_cast<int64_t>(f.compressed_dims.size());
  const int64_t e = dtype_bytes(s.dtype), heads = s.batch * s.kv_heads;
  FourierBufferBytes b;
  b.kept = static_cast<size_t>(heads * s.tokens * (s.head_dim - c) * e);
  b.edge = static_cast<size_t>(heads * f.edge() * c * e);
  b.coeffs = static_cast<size_t>(heads * f.m * c * e);
  return b;
}

FourierTensor alloc_fourier_tensor(Backend& b, const KvShape& s, const FourierLayout& f) {
  const FourierBufferBytes bytes = fourier_buffer_bytes(s, f);
  FourierTensor t;
  t.kept = b.alloc(bytes.kept);
  t.edge = b.alloc(bytes.edge);
  t.coeffs = b.alloc(bytes.coeffs);
  return t;
}

std::vector<std::string> available_backends() {
  std::vector<std::string> names{"cpu"};
  if (cuda_unavailable_reason().empty()) names.push_back("cuda");
  return names;
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "cuda") return make_cuda_backend();
  throw std::runtime_error("unknown kernel backend '" + name + "' (known: cpu, cuda)");
}

void prepare_process_for_backends(char** argv) { cpu::use_passive_openmp_wait(argv); }

std::string cpu_thread_wait_policy() { return cpu::openmp_wait_policy(); }

}  // namespace kvscope::kernels
