// Windows into a backend's buffers, and filling large buffers with random values fast.
//
// A BufferView is not an allocation: it names `bytes` of another buffer starting at `offset`,
// so one allocation can hold many tensors (a sequence's K and V of every layer, say) while the
// backend's allocated_bytes() counts the allocation once. Backends only use data() and bytes()
// of the buffers they are given, so a view works wherever a buffer does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace kvscope::kernels {

class BufferView final : public DeviceBuffer {
 public:
  BufferView(DeviceBuffer& parent, size_t offset, size_t bytes)
      : parent_(&parent), offset_(offset), bytes_(bytes) {
    if (offset > parent.bytes() || bytes > parent.bytes() - offset)
      throw std::out_of_range("BufferView: [" + std::to_string(offset) + ", +" +
                              std::to_string(bytes) + ") is outside a buffer of " +
                              std::to_string(parent.bytes()) + " bytes");
  }
  void* data() override { return static_cast<char*>(parent_->data()) + offset_; }
  const void* data() const override {
    return static_cast<const char*>(static_cast<const DeviceBuffer*>(parent_)->data()) + offset_;
  }
  size_t bytes() const override { return bytes_; }

 private:
  DeviceBuffer* parent_;
  size_t offset_, bytes_;
};

// `count` values uniform in [-1, 1), the same for the same seed (splitmix64): fast enough to fill
// GPU-sized inputs on the host, and random enough that the GPU's power draw (which depends on
// bit toggling) is realistic. The benchmarks' inputs and RandomTiler's tiles.
std::vector<float> random_uniform(size_t count, uint64_t seed);

// Random values in [-1, 1) of one dtype, generated once on the host and uploaded in tiles:
// filling gigabytes of weights element by element on the host would take longer than the
// kernels it feeds. The values repeat every tile, which changes nothing for the kernels' speed
// (their work and memory traffic do not depend on the values; power draw depends on the bits
// toggling, which random tiles provide).
class RandomTiler {
 public:
  RandomTiler(DType t, size_t tile_bytes, uint64_t seed);
  void fill(Backend& b, DeviceBuffer& dst) const;

 private:
  std::vector<std::byte> tile_;
};

}  // namespace kvscope::kernels
