// Cosine similarity between Z' and a cached CCV, row-wise and over the whole context.
// Accumulated in f32 per row (the spec); rows are combined in double for the whole-context
// value so a long context does not lose the small rows. A zero vector has cosine 0.
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/common.h"
#include "kernels/cpu/cpu_backend.h"

namespace kvscope::kernels::cpu {
namespace {

struct Sums {
  float dot = 0, aa = 0, bb = 0;
};

Sums row_sums(DType t, const std::byte* a, const std::byte* b, int64_t dim) {
  constexpr int64_t kChunk = 256;
  float fa[kChunk], fb[kChunk];
  Sums s;
  for (int64_t off = 0; off < dim; off += kChunk) {
    const int64_t n = std::min(kChunk, dim - off);
    to_f32(t, a + static_cast<size_t>(off) * esize(t), fa, static_cast<size_t>(n));
    to_f32(t, b + static_cast<size_t>(off) * esize(t), fb, static_cast<size_t>(n));
    const Eigen::Map<const Eigen::VectorXf> va(fa, n), vb(fb, n);
    s.dot += va.dot(vb);
    s.aa += va.squaredNorm();
    s.bb += vb.squaredNorm();
  }
  return s;
}

void check(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a, const DeviceBuffer& b,
           const DeviceBuffer& out, size_t out_floats, const char* what) {
  if (rows < 1 || dim < 1) throw std::invalid_argument(std::string(what) + ": rows, dim >= 1");
  const size_t bytes = static_cast<size_t>(rows * dim) * esize(t);
  require_bytes(a, bytes, what);
  require_bytes(b, bytes, what);
  require_bytes(out, out_floats * sizeof(float), what);
}

}  // namespace

void CpuBackend::cosine_rows(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a,
                             const DeviceBuffer& b, DeviceBuffer& out) {
  check(rows, dim, t, a, b, out, static_cast<size_t>(rows), "cosine_rows");
  const auto* ap = static_cast<const std::byte*>(a.data());
  const auto* bp = static_cast<const std::byte*>(b.data());
  auto* op = static_cast<float*>(out.data());
  const size_t stride = static_cast<size_t>(dim) * esize(t);
#pragma omp parallel for schedule(static) if (static_cast <double>(rows * dim) >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const Sums s = row_sums(t, ap + static_cast<size_t>(r) * stride,
                            bp + static_cast<size_t>(r) * stride, dim);
    const float den = std::sqrt(s.aa) * std::sqrt(s.bb);
    op[r] = den > 0.0f ? s.dot / den : 0.0f;
  }
}

void CpuBackend::cosine_whole(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a,
                              const DeviceBuffer& b, DeviceBuffer& out) {
  check(rows, dim, t, a, b, out, 1, "cosine_whole");
  const auto* ap = static_cast<const std::byte*>(a.data());
  const auto* bp = static_cast<const std::byte*>(b.data());
  const size_t stride = static_cast<size_t>(dim) * esize(t);
  double dot = 0, aa = 0, bb = 0;
#pragma omp parallel for schedule(static) reduction(+ : dot, aa, bb) \
    if (static_cast<double>(rows * dim) >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const Sums s = row_sums(t, ap + static_cast<size_t>(r) * stride,
                            bp + static_cast<size_t>(r) * stride, dim);
    dot += static_cast<double>(s.dot);
    aa += static_cast<double>(s.aa);
    bb += static_cast<double>(s.bb);
  }
  const double den = std::sqrt(aa) * std::sqrt(bb);
  *static_cast<float*>(out.data()) = den > 0.0 ? static_cast<float>(dot / den) : 0.0f;
}

}  // namespace kvscope::kernels::cpu
