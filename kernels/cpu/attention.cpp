// Exact attention (prefill and decode, GQA, causal). Per job: S = Q K^T over the keys the
// block can see, masked softmax, O = P V; Eigen does both products.
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/common.h"
#include "kernels/cpu/cpu_backend.h"

namespace kvscope::kernels::cpu {

void CpuBackend::attention(const AttentionArgs& a, const DeviceBuffer& q, const DeviceBuffer& k,
                           const DeviceBuffer& v, DeviceBuffer& o) {
  check_attention(a);
  const size_t e = esize(a.dtype);
  const size_t q_elems = static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim);
  const size_t kv_elems = static_cast<size_t>(a.batch * a.kv_heads * a.tokens * a.head_dim);
  require_bytes(q, q_elems * e, "attention q");
  require_bytes(k, kv_elems * e, "attention k");
  require_bytes(v, kv_elems * e, "attention v");
  require_bytes(o, q_elems * e, "attention o");

  const auto* qb = static_cast<const std::byte*>(q.data());
  auto* ob = static_cast<std::byte*>(o.data());
  const int64_t d = a.head_dim, group = a.q_heads / a.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  for_each_attention_job(a, [&](int64_t b, int64_t g, int64_t q0, int64_t nq) {
    RowMat qm, s, out;
    load_queries(a, qb, b, g, q0, nq, qm);
    const int64_t kmax = visible_keys(a, q0 + nq - 1);
    const size_t head_off = static_cast<size_t>((b * a.kv_heads + g) * a.tokens * d);
    std::vector<float> ks, vs;
    const size_t n = static_cast<size_t>(kmax * d);
    const ConstRowMap km(f32_slice(a.dtype, k, head_off, n, ks), kmax, d);
    const ConstRowMap vm(f32_slice(a.dtype, v, head_off, n, vs), kmax, d);
    s.resize(qm.rows(), kmax);
    s.noalias() = qm * km.transpose();
    for (int64_t h = 0; h < group; ++h)
      for (int64_t i = 0; i < nq; ++i)
        scaled_masked_softmax(s.data() + (h * nq + i) * kmax, visible_keys(a, q0 + i), kmax, scale);
    out.resize(qm.rows(), d);
    out.noalias() = s * vm;
    store_outputs(a, out, b, g, q0, nq, ob);
  });
}

}  // namespace kvscope::kernels::cpu
