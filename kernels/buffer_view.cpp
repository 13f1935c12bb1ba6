#include "kernels/buffer_view.h"

#include <algorithm>

#include "kernels/convert.h"

namespace kvscope::kernels {

std::vector<float> random_uniform(size_t count, uint64_t seed) {
  std::vector<float> v(count);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& f : v) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    f = static_cast<float>(static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0);
  }
  return v;
}

RandomTiler::RandomTiler(DType t, size_t tile_bytes, uint64_t seed) {
  const size_t e = static_cast<size_t>(dtype_bytes(t));
  tile_ = encode(t, random_uniform(std::max<size_t>(tile_bytes / e, 1), seed));
}

void RandomTiler::fill(Backend& b, DeviceBuffer& dst) const {
  const size_t n = dst.bytes();
  for (size_t off = 0; off < n; off += tile_.size()) {
    const size_t len = std::min(tile_.size(), n - off);
    BufferView part(dst, off, len);
    b.upload(part, tile_.data(), len);
  }
}

}  // namespace kvscope::kernels
