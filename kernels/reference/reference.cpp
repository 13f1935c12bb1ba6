#include "kernels/reference/reference.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kvscope::kernels::reference {
namespace {

constexpr double kPi = std::numbers::pi;

bool is_compressed(const FourierLayout& f, int64_t d) {
  return std::find(f.compressed_dims.begin(), f.compressed_dims.end(), d) !=
         f.compressed_dims.end();
}

// Token of edge slot j, or -1 (backend.h, "Edge slots").
int64_t slot_token(const FourierLayout& f, int64_t tokens, int64_t j) {
  const int64_t middle = tokens > f.sink + f.window ? tokens - f.sink - f.window : 0;
  if (middle == 0) return j < tokens ? j : -1;
  if (j < f.sink) return j;
  return tokens - f.window + (j - f.sink);
}

double basis(int64_t n, int64_t k, int64_t len) {
  const double s = k == 0 ? std::sqrt(1.0 / static_cast<double>(len))
                          : std::sqrt(2.0 / static_cast<double>(len));
  return s * std::cos(kPi * (static_cast<double>(n) + 0.5) * static_cast<double>(k) /
                      static_cast<double>(len));
}

}  // namespace

Fourier64 fourier_compress(const KvShape& s, const FourierLayout& f, const Vec& kv) {
  const int64_t T = s.tokens, D = s.head_dim, C = static_cast<int64_t>(f.compressed_dims.size());
  const int64_t E = f.sink + f.window, M = f.m;
  const int64_t L = T > E ? T - E : 0;
  Fourier64 out;
  out.kept.assign(static_cast<size_t>(s.batch * s.kv_heads * T * (D - C)), 0.0);
  out.edge.assign(static_cast<size_t>(s.batch * s.kv_heads * E * C), 0.0);
  out.coeffs.assign(static_cast<size_t>(s.batch * s.kv_heads * M * C), 0.0);
  for (int64_t h = 0; h < s.batch * s.kv_heads; ++h) {
    auto x = [&](int64_t t, int64_t d) { return kv[static_cast<size_t>((h * T + t) * D + d)]; };
    for (int64_t t = 0; t < T; ++t) {
      int64_t j = 0;
      for (int64_t d = 0; d < D; ++d)
        if (!is_compressed(f, d))
          out.kept[static_cast<size_t>((h * T + t) * (D - C) + j++)] = x(t, d);
    }
    for (int64_t slot = 0; slot < E; ++slot) {
      const int64_t t = slot_token(f, T, slot);
      if (t < 0) continue;
      for (int64_t c = 0; c < C; ++c)
        out.edge[static_cast<size_t>((h * E + slot) * C + c)] =
            x(t, f.compressed_dims[static_cast<size_t>(c)]);
    }
    for (int64_t k = 0; k < std::min(M, L); ++k)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t n = 0; n < L; ++n)
          acc += x(f.sink + n, f.compressed_dims[static_cast<size_t>(c)]) * basis(n, k, L);
        out.coeffs[static_cast<size_t>((h * M + k) * C + c)] = acc;
      }
  }
  return out;
}

Vec fourier_reconstruct(const KvShape& s, const FourierLayout& f, const Fourier64& t) {
  const int64_t T = s.tokens, D = s.head_dim, C = static_cast<int64_t>(f.compressed_dims.size());
  const int64_t E = f.sink + f.window, M = f.m;
  const int64_t L = T > E ? T - E : 0;
  Vec kv(static_cast<size_t>(s.elements()), 0.0);
  for (int64_t h = 0; h < s.batch * s.kv_heads; ++h) {
    auto at = [&](int64_t tok, int64_t d) -> double& {
      return kv[static_cast<size_t>((h * T + tok) * D + d)];
    };
    for (int64_t tok = 0; tok < T; ++tok) {
      int64_t j = 0;
      for (int64_t d = 0; d < D; ++d)
        if (!is_compressed(f, d))
          at(tok, d) = t.kept[static_cast<size_t>((h * T + tok) * (D - C) + j++)];
    }
    for (int64_t slot = 0; slot < E; ++slot) {
      const int64_t tok = slot_token(f, T, slot);
      if (tok < 0) continue;
      for (int64_t c = 0; c < C; ++c)
        at(tok, f.compressed_dims[static_cast<size_t>(c)]) =
            t.edge[static_cast<size_t>((h * E + slot) * C + c)];
    }
    for (int64_t n = 0; n < L; ++n)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t k = 0; k < std::min(M, L); ++k)
          acc += t.coeffs[static_cast<size_t>((h * M + k) * C + c)] * basis(n, k, L);
        at(f.sink + n, f.compressed_dims[static_cast<size_t>(c)]) = acc;
      }
  }
  return kv;
}

Vec attention(const AttentionArgs& a, const Vec& q, const Vec& k, const Vec& v) {
  const int64_t D = a.head_dim, T = a.tokens, group = a.q_heads / a.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Vec o(static_cast<size_t>(a.batch * a.q_heads * a.q_len * D), 0.0);
  Vec p(static_cast<size_t>(T));
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.q_heads; ++h) {
      const int64_t kvh = h / group;
      for (int64_t i = 0; i < a.q_len; ++i) {
        const int64_t visible = a.causal ? T - a.q_len + i + 1 : T;
        const size_t qo = static_cast<size_t>(((b * a.q_heads + h) * a.q_len + i) * D);
        double mx = -INFINITY;
        for (int64_t t = 0; t < visible; ++t) {
          const size_t ko = static_cast<size_t>(((b * a.kv_heads + kvh) * T + t) * D);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += q[qo + static_cast<size_t>(d)] * k[ko + static_cast<size_t>(d)];
          p[static_cast<size_t>(t)] = dot * scale;
          mx = std::max(mx, p[static_cast<size_t>(t)]);
        }
        double sum = 0;
        for (int64_t t = 0; t < visible; ++t)
          sum += (p[static_cast<size_t>(t)] = std::exp(p[static_cast<size_t>(t)] - mx));
        for (int64_t t = 0; t < visible; ++t) {
          const size_t vo = static_cast<size_t>(((b * a.kv_heads + kvh) * T + t) * D);
          for (int64_t d = 0; d < D; ++d)
            o[qo + static_cast<size_t>(d)] +=
                p[static_cast<size_t>(t)] / sum * v[vo + static_cast<size_t>(d)];
        }
      }
    }
  return o;
}

Vec fourier_attention(const AttentionArgs& a, const FourierLayout& f, const Vec& q,
                      const Fourier64& k, const Fourier64& v) {
  const KvShape s{a.batch, a.kv_heads, a.tokens, a.head_dim, a.dtype};
  return attention(a, q, fourier_reconstruct(s, f, k), fourier_reconstruct(s, f, v));
}

Vec gemm(const GemmArgs& g, const Vec& x, const Vec& w, const Vec* bias) {
  Vec y(static_cast<size_t>(g.rows * g.out));
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t o = 0; o < g.out; ++o) {
      double acc = bias ? (*bias)[static_cast<size_t>(o)] : 0.0;
      for (int64_t i = 0; i < g.in; ++i)
        acc += x[static_cast<size_t>(r * g.in + i)] * w[static_cast<size_t>(o * g.in + i)];
      y[static_cast<size_t>(r * g.out + o)] = acc;
    }
  return y;
}

Vec cosine_rows(int64_t rows, int64_t dim, const Vec& a, const Vec& b) {
  Vec out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < dim; ++i) {
      const double x = a[static_cast<size_t>(r * dim + i)], y = b[static_cast<size_t>(r * dim + i)];
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[static_cast<size_t>(r)] = aa > 0 && bb > 0 ? dot / std::sqrt(aa * bb) : 0.0;
  }
  return out;
}

double cosine_whole(int64_t rows, int64_t dim, const Vec& a, const Vec& b) {
  double dot = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < rows * dim; ++i) {
    dot += a[static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
    aa += a[static_cast<size_t>(i)] * a[static_cast<size_t>(i)];
    bb += b[static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
  }
  return aa > 0 && bb > 0 ? dot / std::sqrt(aa * bb) : 0.0;
}

}  // namespace kvscope::kernels::reference
