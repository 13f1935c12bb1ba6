// Y = X W^T (+ b) with Eigen's GEMM (threaded by OpenMP over the output). 16-bit inputs are
// widened to f32 first: the CPU has no bf16 matrix unit worth using here, and the widening pass
// is one read of the operands, which a memory-bound skinny GEMM pays anyway.
#include <stdexcept>

#include "kernels/cpu/common.h"
#include "kernels/cpu/cpu_backend.h"

namespace kvscope::kernels::cpu {

void CpuBackend::gemm(const GemmArgs& g, const DeviceBuffer& x, const DeviceBuffer& w,
                      const DeviceBuffer* bias, DeviceBuffer& y) {
  if (g.rows < 1 || g.out < 1 || g.in < 1)
    throw std::invalid_argument("gemm: rows, out and in must be >= 1");
  if (g.bias && !bias) throw std::invalid_argument("gemm: bias requested but not given");
  const size_t e = esize(g.dtype);
  const size_t xs = static_cast<size_t>(g.rows * g.in), ws = static_cast<size_t>(g.out * g.in);
  const size_t ys = static_cast<size_t>(g.rows * g.out);
  require_bytes(x, xs * e, "gemm x");
  require_bytes(w, ws * e, "gemm w");
  require_bytes(y, ys * e, "gemm y");
  if (g.bias) require_bytes(*bias, static_cast<size_t>(g.out) * e, "gemm bias");

  const F32View xf(g.dtype, x, xs), wf(g.dtype, w, ws);
  const ConstRowMap xm(xf.data(), g.rows, g.in), wm(wf.data(), g.out, g.in);
  RowMat tmp;
  float* yp = nullptr;
  if (g.dtype == DType::f32) {
    yp = static_cast<float*>(y.data());
  } else {
    tmp.resize(g.rows, g.out);
    yp = tmp.data();
  }
  RowMap ym(yp, g.rows, g.out);
  ym.noalias() = xm * wm.transpose();
  if (g.bias) {
    std::vector<float> b(static_cast<size_t>(g.out));
    to_f32(g.dtype, bias->data(), b.data(), b.size());
    const Eigen::Map<const Eigen::RowVectorXf> bm(b.data(), g.out);
    ym.rowwise() += bm;
  }
  if (g.dtype != DType::f32) from_f32(g.dtype, tmp.data(), y.data(), ys);
}

}  // namespace kvscope::kernels::cpu
