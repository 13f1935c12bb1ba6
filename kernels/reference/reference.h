// The float64 reference every backend is checked against: plain direct sums, written from the
// definitions in kernels/backend.h and sharing no code with any backend. Slow by design (the
// DCT is O(L M) per dim); use it on test-sized shapes. Tensors are flat row-major vectors in
// backend.h's layouts.
#pragma once

#include <vector>

#include "kernels/backend.h"

namespace kvscope::kernels::reference {

using Vec = std::vector<double>;

struct Fourier64 {
  Vec kept, edge, coeffs;  // backend.h's FourierTensor layout
};

// kv [batch, kv_heads, tokens, head_dim] -> the compressed form (unused slots and the
// coefficients past L zero).
Fourier64 fourier_compress(const KvShape& s, const FourierLayout& f, const Vec& kv);
// The full tensor back from the compressed form.
Vec fourier_reconstruct(const KvShape& s, const FourierLayout& f, const Fourier64& t);

// Exact attention, softmax scale 1/sqrt(head_dim), queries the last q_len positions.
Vec attention(const AttentionArgs& a, const Vec& q, const Vec& k, const Vec& v);
// Attention over the compressed cache, defined as exact attention over the reconstruction.
Vec fourier_attention(const AttentionArgs& a, const FourierLayout& f, const Vec& q,
                      const Fourier64& k, const Fourier64& v);

// Y[rows, out] = X W^T (+ bias); bias may be null.
Vec gemm(const GemmArgs& g, const Vec& x, const Vec& w, const Vec* bias);

// cos(a_r, b_r) per row, and cos(vec a, vec b); a zero vector has cosine 0.
Vec cosine_rows(int64_t rows, int64_t dim, const Vec& a, const Vec& b);
double cosine_whole(int64_t rows, int64_t dim, const Vec& a, const Vec& b);

}  // namespace kvscope::kernels::reference
