// The Fourier-compressed cache on the CPU: compression (orthonormal DCT-II of each compressed
// dim over the middle tokens), reconstruction (DCT-III), and attention straight from the
// coefficients. Each transform runs either through dct.h's FFT or as a GEMM against the cached
// DCT basis, whichever is estimated cheaper (use_basis below).
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/common.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/dct.h"

namespace kvscope::kernels::cpu {
namespace {

struct Dims {
  int64_t t, d, c, dk, e, l, m,
      mp;  // tokens, head_dim, compressed, kept, edge, middle, M, min(M,L)
};

Dims dims_of(const KvShape& s, const FourierLayout& f) {
  Dims x{};
  x.t = s.tokens;
  x.d = s.head_dim;
  x.c = static_cast<int64_t>(f.compressed_dims.size());
  x.dk = x.d - x.c;
  x.e = f.edge();
  x.l = f.middle(s.tokens);
  x.m = f.m;
  x.mp = std::min(x.m, x.l);
  return x;
}

void check_tensor(const KvShape& s, const FourierLayout& f, const FourierTensor& t,
                  const char* what) {
  if (!t.kept || !t.edge || !t.coeffs)
    throw std::invalid_argument(std::string(what) + ": FourierTensor buffers not allocated");
  const FourierBufferBytes need = fourier_buffer_bytes(s, f);
  require_bytes(*t.kept, need.kept, what);
  require_bytes(*t.edge, need.edge, what);
  require_bytes(*t.coeffs, need.coeffs, what);
}

std::atomic<TransformPath>& path_setting() {
  static std::atomic<TransformPath> setting = transform_path_from_env();
  return setting;
}

// Whether `transforms` length-l transforms of k_count coefficients each should go through the
// basis GEMM. Costs in f32 FLOPs, the FFT's weighted by how much slower kissfft runs per FLOP
// than Eigen's GEMM: measured here (2-core EPYC, 2026-11-23) kissfft sustains ~1.5 GFLOP/s
// nominal (5 n log2 n) on smooth lengths and a Bluestein length costs ~4.6x its smooth
// neighbour, while the GEMM sustains ~12 GFLOP/s. So the FFT only wins for k_count in the
// hundreds or more on smooth lengths (e.g. M >= L, the lossless case).
bool use_basis(int64_t l, int64_t k_count, int64_t transforms) {
  const TransformPath p = path_setting();
  if (p != TransformPath::automatic) return p == TransformPath::basis;
  constexpr double kFftSlowdown = 8.0, kBluesteinFactor = 4.6;
  const double n = static_cast<double>(l);
  const double fft = kFftSlowdown * 5.0 * n * std::log2(std::max(n, 2.0)) *
                     (dct_plan(l).uses_bluestein() ? kBluesteinFactor : 1.0);
  const double gemm = 2.0 * static_cast<double>(k_count) * n;
  // Building the basis costs about one transform's worth of cosines per coefficient row; only
  // many transforms (or a cached basis) pay for it.
  return transforms >= 8 ? gemm < fft : gemm < 0.5 * fft;
}

// Heads are independent. With at least as many heads as threads each thread takes whole heads;
// otherwise heads run one after another and the per-dim transforms inside go parallel.
bool parallel_over_heads(int64_t heads) { return heads >= thread_count(); }
bool worth_parallel(const KvShape& s) {
  return static_cast<double>(s.elements()) >= kParallelMinWork / 4;
}

}  // namespace

const char* transform_path_name(TransformPath t) {
  switch (t) {
    case TransformPath::fft:
      return "fft";
    case TransformPath::basis:
      return "basis";
    case TransformPath::automatic:
      break;
  }
  return "auto";
}

TransformPath transform_path_from_env() {
  const char* env = std::getenv(kTransformPathSwitch);
  if (!env || !*env) return TransformPath::automatic;
  for (const TransformPath t : {TransformPath::automatic, TransformPath::fft, TransformPath::basis})
    if (std::string(env) == transform_path_name(t)) return t;
  throw std::invalid_argument(std::string(kTransformPathSwitch) + "=" + env +
                              ": expected one of auto, fft, basis, or unset");
}

void set_transform_path(TransformPath t) { path_setting() = t; }
TransformPath transform_path() { return path_setting(); }

void CpuBackend::fourier_compress(const KvShape& s, const FourierLayout& f, const DeviceBuffer& kv,
                                  FourierTensor& out) {
  check_layout(f, s.head_dim);
  check_tensor(s, f, out, "fourier_compress");
  require_bytes(kv, static_cast<size_t>(s.elements()) * esize(s.dtype), "fourier_compress kv");
  const Dims x = dims_of(s, f);
  const size_t e = esize(s.dtype);
  const std::vector<int64_t> kept = kept_dims(f, x.d);
  const int64_t heads = s.batch * s.kv_heads;
  const auto* src_all = static_cast<const std::byte*>(kv.data());
  auto* kept_all = static_cast<std::byte*>(out.kept->data());
  auto* edge_all = static_cast<std::byte*>(out.edge->data());
  auto* coef_all = static_cast<std::byte*>(out.coeffs->data());
  const bool par = worth_parallel(s), outer = par && parallel_over_heads(heads);
  std::shared_ptr<const BasisMatrix> basis;
  if (x.l > 0 && x.c > 0 && use_basis(x.l, x.mp, heads * x.c)) basis = dct_basis(x.l, x.mp);

#pragma omp parallel for schedule(dynamic, 1) if (outer)
  for (int64_t h = 0; h < heads; ++h) {
    const std::byte* src = src_all + static_cast<size_t>(h * x.t * x.d) * e;
    // Exact parts are byte copies: no rounding for any dtype.
    std::byte* kp = kept_all + static_cast<size_t>(h * x.t * x.dk) * e;
    for (int64_t t = 0; t < x.t; ++t)
      for (int64_t j = 0; j < x.dk; ++j)
        std::memcpy(kp + static_cast<size_t>(t * x.dk + j) * e,
                    src + static_cast<size_t>(t * x.d + kept[static_cast<size_t>(j)]) * e, e);
    std::byte* ep = edge_all + static_cast<size_t>(h * x.e * x.c) * e;
    std::memset(ep, 0, static_cast<size_t>(x.e * x.c) * e);
    for (int64_t slot = 0; slot < x.e; ++slot) {
      const int64_t t = edge_token(f, x.t, slot);
      if (t < 0) continue;
      for (int64_t c = 0; c < x.c; ++c)
        std::memcpy(
            ep + static_cast<size_t>(slot * x.c + c) * e,
            src + static_cast<size_t>(t * x.d + f.compressed_dims[static_cast<size_t>(c)]) * e, e);
    }
    std::byte* cp = coef_all + static_cast<size_t>(h * x.m * x.c) * e;
    std::memset(cp, 0, static_cast<size_t>(x.m * x.c) * e);
    if (x.l == 0 || x.c == 0) continue;
    // The middle block of the compressed dims, [L, C] f32, gathered in one row-wise pass.
    RowMat mid(x.l, x.c);
    std::vector<float> row(static_cast<size_t>(x.d));
    for (int64_t n = 0; n < x.l; ++n) {
      to_f32(s.dtype, src + static_cast<size_t>((f.sink + n) * x.d) * e, row.data(),
             static_cast<size_t>(x.d));
      for (int64_t c = 0; c < x.c; ++c)
        mid(n, c) = row[static_cast<size_t>(f.compressed_dims[static_cast<size_t>(c)])];
    }
    RowMat coef(x.mp, x.c);
    if (basis) {
      coef.noalias() = *basis * mid;  // [M', L] x [L, C]
    } else {
      const RowMat cols = mid.transpose();  // one contiguous sequence per dim
#pragma omp parallel for schedule(static) if (par && !outer)
      for (int64_t c = 0; c < x.c; ++c) {
        std::vector<float> out_k(static_cast<size_t>(x.mp));
        dct_plan(x.l).dct2(cols.row(c).data(), out_k.data(), x.mp);
        for (int64_t k = 0; k < x.mp; ++k)
          coef(k, c) = dct_scale(k, x.l) * out_k[static_cast<size_t>(k)];
      }
    }
    from_f32(s.dtype, coef.data(), cp, coef.size());
  }
}

void CpuBackend::fourier_reconstruct(const KvShape& s, const FourierLayout& f,
                                     const FourierTensor& in, DeviceBuffer& kv) {
  check_layout(f, s.head_dim);
  check_tensor(s, f, in, "fourier_reconstruct");
  require_bytes(kv, static_cast<size_t>(s.elements()) * esize(s.dtype), "fourier_reconstruct kv");
  const Dims x = dims_of(s, f);
  const size_t e = esize(s.dtype);
  const std::vector<int64_t> kept = kept_dims(f, x.d);
  const int64_t heads = s.batch * s.kv_heads;
  auto* dst_all = static_cast<std::byte*>(kv.data());
  const auto* kept_all = static_cast<const std::byte*>(in.kept->data());
  const auto* edge_all = static_cast<const std::byte*>(in.edge->data());
  const auto* coef_all = static_cast<const std::byte*>(in.coeffs->data());
  const bool par = worth_parallel(s), outer = par && parallel_over_heads(heads);
  std::shared_ptr<const BasisMatrix> basis;
  if (x.l > 0 && x.c > 0 && use_basis(x.l, x.mp, heads * x.c)) basis = dct_basis(x.l, x.mp);

#pragma omp parallel for schedule(dynamic, 1) if (outer)
  for (int64_t h = 0; h < heads; ++h) {
    std::byte* dst = dst_all + static_cast<size_t>(h * x.t * x.d) * e;
    const std::byte* kp = kept_all + static_cast<size_t>(h * x.t * x.dk) * e;
    for (int64_t t = 0; t < x.t; ++t)
      for (int64_t j = 0; j < x.dk; ++j)
        std::memcpy(dst + static_cast<size_t>(t * x.d + kept[static_cast<size_t>(j)]) * e,
                    kp + static_cast<size_t>(t * x.dk + j) * e, e);
    const std::byte* ep = edge_all + static_cast<size_t>(h * x.e * x.c) * e;
    for (int64_t slot = 0; slot < x.e; ++slot) {
      const int64_t t = edge_token(f, x.t, slot);
      if (t < 0) continue;
      for (int64_t c = 0; c < x.c; ++c)
        std::memcpy(
            dst + static_cast<size_t>(t * x.d + f.compressed_dims[static_cast<size_t>(c)]) * e,
            ep + static_cast<size_t>(slot * x.c + c) * e, e);
    }
    if (x.l == 0 || x.c == 0) continue;
    RowMat coef(x.mp, x.c);
    to_f32(s.dtype, coef_all + static_cast<size_t>(h * x.m * x.c) * e, coef.data(),
           static_cast<size_t>(x.mp * x.c));
    RowMat mid(x.l, x.c);  // the middle block of the compressed dims
    if (basis) {
      mid.noalias() = basis->transpose() * coef;  // [L, M'] x [M', C]
    } else {
      RowMat cols(x.c, x.l);
#pragma omp parallel for schedule(static) if (par && !outer)
      for (int64_t c = 0; c < x.c; ++c) {
        std::vector<float> w(static_cast<size_t>(x.mp));
        for (int64_t k = 0; k < x.mp; ++k)
          w[static_cast<size_t>(k)] = dct_scale(k, x.l) * coef(k, c);
        dct_plan(x.l).dct3(w.data(), x.mp, cols.row(c).data());
      }
      mid = cols.transpose();
    }
    for (int64_t n = 0; n < x.l; ++n) {
      std::byte* r = dst + static_cast<size_t>((f.sink + n) * x.d) * e;
      for (int64_t c = 0; c < x.c; ++c)
        from_f32(s.dtype, &mid(n, c),
                 r + static_cast<size_t>(f.compressed_dims[static_cast<size_t>(c)]) * e, 1);
    }
  }
}

// Attention over the compressed cache. Per job (rows = queries of one GQA group):
//   kept dims:        S  = Qk Kkept^T                        (exact, all tokens)
//   edge tokens:      S[:, t_j] += Qc Kedge_j^T              (compressed dims, exact)
//   middle tokens:    S[:, sink + n] += DCT-III_n( s_k (Qc Kcoef^T)_k )
//                     (q.k over the compressed dims is the inverse transform of q projected on
//                     the coefficients; K is never rebuilt)
//   softmax, then     Ok = P Vkept,  Oc = P[:, edge] Vedge + (s_k DCT-II_k(P[:, middle])) Vcoef
//                     (the output over the compressed dims is the coefficients weighted by the
//                     transform of the probabilities)
void CpuBackend::fourier_attention(const AttentionArgs& a, const FourierLayout& f,
                                   const DeviceBuffer& q, const FourierTensor& k,
                                   const FourierTensor& v, DeviceBuffer& o) {
  check_attention(a);
  check_layout(f, a.head_dim);
  const KvShape ks{a.batch, a.kv_heads, a.tokens, a.head_dim, a.dtype};
  check_tensor(ks, f, k, "fourier_attention k");
  check_tensor(ks, f, v, "fourier_attention v");
  const size_t e = esize(a.dtype);
  const size_t q_elems = static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim);
  require_bytes(q, q_elems * e, "fourier_attention q");
  require_bytes(o, q_elems * e, "fourier_attention o");
  const Dims x = dims_of(ks, f);
  const std::vector<int64_t> kept = kept_dims(f, x.d);
  const int64_t group = a.q_heads / a.kv_heads;
  const auto* qb = static_cast<const std::byte*>(q.data());
  auto* ob = static_cast<std::byte*>(o.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(x.d));
  std::vector<int64_t> slot_token(static_cast<size_t>(x.e));
  for (int64_t slot = 0; slot < x.e; ++slot)
    slot_token[static_cast<size_t>(slot)] = edge_token(f, x.t, slot);
  std::vector<float> sk(static_cast<size_t>(x.mp));
  for (int64_t i = 0; i < x.mp; ++i) sk[static_cast<size_t>(i)] = dct_scale(i, x.l);

  // Each query row needs two transforms (scores in, probabilities out).
  std::shared_ptr<const BasisMatrix> basis;
  if (x.l > 0 && x.c > 0 && use_basis(x.l, x.mp, 2 * a.batch * a.q_heads * a.q_len))
    basis = dct_basis(x.l, x.mp);  // null past the cache budget: the FFT path then

  for_each_attention_job(a, [&](int64_t b, int64_t g, int64_t q0, int64_t nq) {
    RowMat qm;
    load_queries(a, qb, b, g, q0, nq, qm);
    const int64_t r = qm.rows();
    RowMat qk(r, x.dk), qc(r, x.c);
    for (int64_t j = 0; j < x.dk; ++j) qk.col(j) = qm.col(kept[static_cast<size_t>(j)]);
    for (int64_t c = 0; c < x.c; ++c) qc.col(c) = qm.col(f.compressed_dims[static_cast<size_t>(c)]);

    const int64_t kmax = visible_keys(a, q0 + nq - 1);
    const int64_t head = b * a.kv_heads + g;
    std::vector<float> s1, s2, s3, s4, s5, s6;
    const DType dt = a.dtype;
    const size_t ko = static_cast<size_t>(head * x.t * x.dk), kn = static_cast<size_t>(kmax * x.dk);
    const size_t eo = static_cast<size_t>(head * x.e * x.c), en = static_cast<size_t>(x.e * x.c);
    const size_t co = static_cast<size_t>(head * x.m * x.c), cn = static_cast<size_t>(x.mp * x.c);
    const ConstRowMap kkm(f32_slice(dt, *k.kept, ko, kn, s1), kmax, x.dk);
    const ConstRowMap vkm(f32_slice(dt, *v.kept, ko, kn, s2), kmax, x.dk);
    const ConstRowMap kem(f32_slice(dt, *k.edge, eo, en, s3), x.e, x.c);
    const ConstRowMap vem(f32_slice(dt, *v.edge, eo, en, s4), x.e, x.c);
    const ConstRowMap kcm(f32_slice(dt, *k.coeffs, co, cn, s5), x.mp, x.c);
    const ConstRowMap vcm(f32_slice(dt, *v.coeffs, co, cn, s6), x.mp, x.c);

    RowMat s(r, kmax);
    if (x.dk > 0)
      s.noalias() = qk * kkm.transpose();
    else
      s.setZero();
    if (x.c > 0) {
      const RowMat se = qc * kem.transpose();  // [r, E]
      for (int64_t slot = 0; slot < x.e; ++slot) {
        const int64_t t = slot_token[static_cast<size_t>(slot)];
        if (t >= 0 && t < kmax) s.col(t) += se.col(slot);
      }
    }
    const int64_t mid_visible = std::clamp<int64_t>(kmax - f.sink, 0, x.l);
    const bool has_middle = x.l > 0 && x.c > 0 && mid_visible > 0;
    std::vector<float> buf(static_cast<size_t>(x.l));
    if (has_middle && basis) {
      const RowMat u = qc * kcm.transpose();  // [r, mp]; the basis carries s_k
      s.middleCols(f.sink, mid_visible).noalias() += u * basis->leftCols(mid_visible);
    } else if (has_middle) {
      RowMat u = qc * kcm.transpose();  // [r, mp]
      for (int64_t i = 0; i < r; ++i) {
        for (int64_t kx = 0; kx < x.mp; ++kx) u(i, kx) *= sk[static_cast<size_t>(kx)];
        dct_plan(x.l).dct3(u.row(i).data(), x.mp, buf.data());
        float* srow = s.row(i).data() + f.sink;
        for (int64_t n = 0; n < mid_visible; ++n) srow[n] += buf[static_cast<size_t>(n)];
      }
    }
    for (int64_t h = 0; h < group; ++h)
      for (int64_t i = 0; i < nq; ++i)
        scaled_masked_softmax(s.data() + (h * nq + i) * kmax, visible_keys(a, q0 + i), kmax, scale);

    RowMat out(r, x.d);
    RowMat ok(r, x.dk), oc = RowMat::Zero(r, x.c);
    if (x.dk > 0) ok.noalias() = s * vkm;
    if (x.c > 0) {
      RowMat pe = RowMat::Zero(r, x.e);
      for (int64_t slot = 0; slot < x.e; ++slot) {
        const int64_t t = slot_token[static_cast<size_t>(slot)];
        if (t >= 0 && t < kmax) pe.col(slot) = s.col(t);
      }
      oc.noalias() += pe * vem;
    }
    if (has_middle && basis) {
      const RowMat wd =
          s.middleCols(f.sink, mid_visible) * basis->leftCols(mid_visible).transpose();
      oc.noalias() += wd * vcm;
    } else if (has_middle) {
      RowMat wd(r, x.mp);
      for (int64_t i = 0; i < r; ++i) {
        const float* srow = s.row(i).data() + f.sink;
        std::copy(srow, srow + mid_visible, buf.begin());
        std::fill(buf.begin() + mid_visible, buf.end(), 0.0f);
        dct_plan(x.l).dct2(buf.data(), wd.row(i).data(), x.mp);
        for (int64_t kx = 0; kx < x.mp; ++kx) wd(i, kx) *= sk[static_cast<size_t>(kx)];
      }
      oc.noalias() += wd * vcm;
    }
    for (int64_t j = 0; j < x.dk; ++j) out.col(kept[static_cast<size_t>(j)]) = ok.col(j);
    for (int64_t c = 0; c < x.c; ++c)
      out.col(f.compressed_dims[static_cast<size_t>(c)]) = oc.col(c);
    store_outputs(a, out, b, g, q0, nq, ob);
  });
}

}  // namespace kvscope::kernels::cpu
