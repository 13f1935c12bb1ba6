// kvscope-fourier-accuracy: how well the Fourier-compressed cache approximates the exact one.
// For each M it compresses K and V (kernels/backend.h, CPU backend, f32 so that only the
// approximation shows), and reports
//   recon K / recon V   ||K^ - K|| / ||K|| over the compressed dims of the middle tokens
//   attn out            ||O^ - O|| / ||O|| of attention over the compressed cache vs the exact
//                       cache, for the last `queries` positions (causal, GQA)
// on two kinds of keys:
//   rope   each dim pair (2i, 2i+1) rotates at theta_i = 10000^(-2i/d) per token, applied to a
//          smooth random content signal (a few random low-frequency cosines per dim), as RoPE
//          builds keys and queries; V is smooth random content without rotation.
//   noise  white Gaussian K, V and Q: nothing to compact, the worst case.
// Compressed dims: the lower half (the fastest-rotating pairs, the paper's default) and, for
// contrast, the upper half.
//   kvscope-fourier-accuracy [--tokens N] [--m 16,32,...] [--queries Q] [--seed S]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/backend.h"

using namespace kvscope;
using namespace kvscope::kernels;

namespace {

struct Options {
  int64_t tokens = 4096, head_dim = 128, kv_heads = 4, q_heads = 8, queries = 16;
  int64_t sink = 4, window = 64;
  std::vector<int64_t> ms = {8, 16, 32, 64, 128, 256, 512, 1024};
  uint64_t seed = 1;
};

// Smooth random content: per (head, dim) a sum of `waves` cosines of random phase with
// frequencies below `max_cycles` periods over the sequence, unit variance overall.
std::vector<float> smooth_content(int64_t heads, int64_t tokens, int64_t dim, std::mt19937_64& g) {
  constexpr int waves = 6;
  constexpr double max_cycles = 8.0;
  std::uniform_real_distribution<double> freq(0.0, max_cycles), phase(0.0, 2 * std::numbers::pi);
  std::normal_distribution<double> amp(0.0, std::sqrt(2.0 / waves));
  std::vector<float> x(static_cast<size_t>(heads * tokens * dim));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t d = 0; d < dim; ++d)
      for (int w = 0; w < waves; ++w) {
        const double f = freq(g), p = phase(g), a = amp(g);
        for (int64_t t = 0; t < tokens; ++t)
          x[static_cast<size_t>((h * tokens + t) * dim + d)] +=
              static_cast<float>(a * std::cos(2 * std::numbers::pi * f * static_cast<double>(t) /
                                                  static_cast<double>(tokens) +
                                              p));
      }
  return x;
}

// RoPE on interleaved pairs (2i, 2i+1) at position offset + t.
void rope(std::vector<float>& x, int64_t heads, int64_t tokens, int64_t dim, int64_t offset) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t i = 0; i < dim / 2; ++i) {
        const double theta =
            std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(dim));
        const double a = theta * static_cast<double>(offset + t);
        const double c = std::cos(a), s = std::sin(a);
        float* p = &x[static_cast<size_t>((h * tokens + t) * dim + 2 * i)];
        const double x0 = p[0], x1 = p[1];
        p[0] = static_cast<float>(c * x0 - s * x1);
        p[1] = static_cast<float>(s * x0 + c * x1);
      }
}

std::vector<float> white(size_t n, std::mt19937_64& g) {
  std::normal_distribution<float> d;
  std::vector<float> x(n);
  for (auto& v : x) v = d(g);
  return x;
}

std::unique_ptr<DeviceBuffer> up(Backend& b, const std::vector<float>& v) {
  auto buf = b.alloc(v.size() * sizeof(float));
  b.upload(*buf, v.data(), v.size() * sizeof(float));
  return buf;
}

std::vector<float> down(Backend& b, const DeviceBuffer& buf, size_t n) {
  std::vector<float> v(n);
  b.download(buf, v.data(), n * sizeof(float));
  return v;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
    num += d * d;
    den += static_cast<double>(want[i]) * static_cast<double>(want[i]);
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

// Relative error over the compressed dims of the middle tokens only.
double middle_err(const std::vector<float>& got, const std::vector<float>& want, const KvShape& s,
                  const FourierLayout& f) {
  double num = 0, den = 0;
  for (int64_t h = 0; h < s.batch * s.kv_heads; ++h)
    for (int64_t t = f.sink; t < s.tokens - f.window; ++t)
      for (int64_t d : f.compressed_dims) {
        const size_t i = static_cast<size_t>((h * s.tokens + t) * s.head_dim + d);
        const double e = static_cast<double>(got[i]) - static_cast<double>(want[i]);
        num += e * e;
        den += static_cast<double>(want[i]) * static_cast<double>(want[i]);
      }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) v.push_back(std::stoll(item));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "kvscope-fourier-accuracy: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--tokens")
        o.tokens = std::stoll(next());
      else if (a == "--m")
        o.ms = parse_list(next());
      else if (a == "--queries")
        o.queries = std::stoll(next());
      else if (a == "--seed")
        o.seed = std::stoull(next());
      else {
        std::cerr << "usage: kvscope-fourier-accuracy [--tokens N] [--m 16,32,...] "
                     "[--queries Q] [--seed S]\n";
        return a == "--help" || a == "-h" ? 0 : 2;
      }
    } catch (const std::exception&) {
      std::cerr << "kvscope-fourier-accuracy: bad value for " << a << "\n";
      return 2;
    }
  }
  if (o.tokens <= o.sink + o.window || o.queries < 1 || o.queries > o.tokens) {
    std::cerr
        << "kvscope-fourier-accuracy: need tokens > sink + window and 1 <= queries <= tokens\n";
    return 2;
  }

  auto b = make_backend("cpu");
  const KvShape s{1, o.kv_heads, o.tokens, o.head_dim, DType::f32};
  const AttentionArgs a{1,         o.q_heads, o.kv_heads, o.head_dim,
                        o.queries, o.tokens,  true,       DType::f32};
  const size_t kv_n = static_cast<size_t>(s.elements());
  const size_t q_n = static_cast<size_t>(o.q_heads * o.queries * o.head_dim);
  const int64_t l = o.tokens - o.sink - o.window;

  std::printf(
      "tokens %lld (middle L = %lld, sink %lld, window %lld), head_dim %lld, %lld q / "
      "%lld kv heads, %lld causal queries at the end, f32, seed %llu\n\n",
      static_cast<long long>(o.tokens), static_cast<long long>(l), static_cast<long long>(o.sink),
      static_cast<long long>(o.window), static_cast<long long>(o.head_dim),
      static_cast<long long>(o.q_heads), static_cast<long long>(o.kv_heads),
      static_cast<long long>(o.queries), static_cast<unsigned long long>(o.seed));
  std::printf(
      "| keys  | compressed dims |    M | KV bytes vs exact | recon K | recon V | attn out |\n");
  std::printf(
      "|-------|-----------------|-----:|------------------:|--------:|--------:|---------:|\n");

  for (const std::string kind : {"rope", "noise"}) {
    std::mt19937_64 g(o.seed);
    std::vector<float> k, v, q;
    if (kind == "rope") {
      k = smooth_content(o.kv_heads, o.tokens, o.head_dim, g);
      rope(k, o.kv_heads, o.tokens, o.head_dim, 0);
      v = smooth_content(o.kv_heads, o.tokens, o.head_dim, g);
      q = smooth_content(o.q_heads, o.queries, o.head_dim, g);
      rope(q, o.q_heads, o.queries, o.head_dim, o.tokens - o.queries);
    } else {
      k = white(kv_n, g);
      v = white(kv_n, g);
      q = white(q_n, g);
    }
    auto kd = up(*b, k), vd = up(*b, v), qd = up(*b, q);
    auto exact = b->alloc(q_n * sizeof(float));
    b->attention(a, *qd, *kd, *vd, *exact);
    const std::vector<float> o_exact = down(*b, *exact, q_n);

    for (const std::string half : {"lower", "upper"}) {
      FourierLayout f;
      for (int64_t d = 0; d < o.head_dim / 2; ++d)
        f.compressed_dims.push_back(half == "lower" ? d : o.head_dim / 2 + d);
      f.sink = o.sink;
      f.window = o.window;
      for (const int64_t m : o.ms) {
        f.m = m;
        FourierTensor kf = alloc_fourier_tensor(*b, s, f), vf = alloc_fourier_tensor(*b, s, f);
        b->fourier_compress(s, f, *kd, kf);
        b->fourier_compress(s, f, *vd, vf);
        auto rec = b->alloc(kv_n * sizeof(float));
        b->fourier_reconstruct(s, f, kf, *rec);
        const double rk = middle_err(down(*b, *rec, kv_n), k, s, f);
        b->fourier_reconstruct(s, f, vf, *rec);
        const double rv = middle_err(down(*b, *rec, kv_n), v, s, f);
        auto approx = b->alloc(q_n * sizeof(float));
        b->fourier_attention(a, f, *qd, kf, vf, *approx);
        const double ro = rel_err(down(*b, *approx, q_n), o_exact);
        const FourierBufferBytes fb = fourier_buffer_bytes(s, f);
        const double frac = static_cast<double>(fb.kept + fb.edge + fb.coeffs) /
                            static_cast<double>(kv_n * sizeof(float));
        std::printf("| %-5s | %-15s | %4lld | %16.1f%% | %7.4f | %7.4f | %8.4f |\n", kind.c_str(),
                    (half + " " + std::to_string(o.head_dim / 2)).c_str(),
                    static_cast<long long>(m), 100.0 * frac, rk, rv, ro);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
