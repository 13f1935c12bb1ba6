// Hopper warpgroup matrix multiply (wgmma.mma_async, sm_90a) for the tiled kernels: the shared-
// memory layout its descriptors read, the descriptors, and m64n128k16 (and one m64n64k16) products
// with f32 accumulators. A warpgroup is 4 consecutive warps (128 threads) that issue each wgmma
// together.
//
// Layout (PTX ISA, "Matrix Descriptor" and "Shared Memory Matrix Layout", 128-byte swizzle): a
// tile of R rows x 128 16-bit elements is stored as two panels of R rows x 64 elements (128 bytes
// per row), each panel 1024-byte aligned; the 16-byte chunk c of row r sits at chunk c ^ (r % 8)
// of its row. That spreads the 8 rows of an 8 x 16-byte column over all 32 banks, both for the
// cp.async writes and for the tensor core's reads, and it is what descriptor swizzle mode 1
// names. Both operand orientations read the same layout:
//  - K-major (the reduction dimension along a row; A = Q and B = K in S = Q K^T): 8-row groups
//    are SBO = 1024 bytes apart; a k16 step moves the start 32 bytes along the row, and k 64..127
//    are in the second panel.
//  - MN-major (the reduction dimension down the rows; B = V in O = P V, so the instruction's
//    transpose-B flag is set): a k16 step is 16 rows, i.e. two 8-row groups SBO = 1024 bytes
//    apart; the N dimension's 64-element halves are the two panels, LBO = panel bytes apart.
//
// Register fragments (PTX ISA, "wgmma .m64nNk16 register fragments"): warp w of the warpgroup
// holds rows 16w .. 16w+15, laid out as mma.sync m16n8k16 holds its 16 rows. With g = lane / 4
// and t = lane % 4, accumulator register 4j + e is row g + 8 (e / 2), column 8j + 2t + (e % 2);
// the A registers of a k16 step are rows {g, g+8} x k {2t, 2t+1, 2t+8, 2t+9}, so an S
// accumulator converts to the A operand of P V in place, as in mma.sync flash attention.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace kvscope::kernels::cuda {

// Byte offset of the 16-byte chunk c (0..15, 8 elements each) of row r in a [rows x 128] tile.
__host__ __device__ constexpr uint32_t sw128_offset(int r, int c, int rows) {
  return uint32_t(c >> 3) * uint32_t(rows) * 128u + uint32_t(r) * 128u +
         (uint32_t((c & 7) ^ (r & 7)) << 4);
}

// The 64-byte swizzle, for K-major tiles whose rows are 32 16-bit elements: the 16-byte chunk c
// (0..3) of row r sits at chunk c ^ ((r / 2) % 4), so the 8 rows of a 512-byte group spread a
// column of chunks over all 32 banks; 8-row groups are SBO = 512 bytes apart.
__host__ __device__ constexpr uint32_t sw64_offset(int r, int c) {
  return uint32_t(r) * 64u + (uint32_t((c & 3) ^ ((r >> 1) & 3)) << 4);
}

// Descriptor swizzle modes (bits 62-63).
constexpr uint32_t kSwizzle128 = 1, kSwizzle64 = 2;

// A shared-memory matrix descriptor for the swizzled layouts above: start address, leading and
// stride byte offsets (each encoded >> 4), the swizzle mode in bits 62-63.
__device__ __forceinline__ uint64_t wg_desc(uint32_t smem, uint32_t lbo, uint32_t sbo,
                                            uint32_t mode = kSwizzle128) {
  return uint64_t((smem & 0x3FFFFu) >> 4) | (uint64_t((lbo & 0x3FFFFu) >> 4) << 16) |
         (uint64_t((sbo & 0x3FFFFu) >> 4) << 32) | (uint64_t(mode) << 62);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KVS_HAVE_WGMMA 1
#else
#define KVS_HAVE_WGMMA 0
#endif

#define KVS_WG_ACC_REGS                                                              \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "          \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define KVS_WG_ACC_OPS(d)                                                                         \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),  \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),  \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),  \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),  \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define KVS_WG_ACC_OUT(d)                                                                         \
  "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), \
      "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]),    \
      "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]),  \
      "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]),  \
      "=f"(d[29]), "=f"(d[30]), "=f"(d[31]), "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]),  \
      "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]), "=f"(d[40]), "=f"(d[41]), "=f"(d[42]),  \
      "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]), "=f"(d[48]), "=f"(d[49]),  \
      "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]), "=f"(d[54]), "=f"(d[55]), "=f"(d[56]),  \
      "=f"(d[57]), "=f"(d[58]), "=f"(d[59]), "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])

// Keeps the compiler from moving reads or writes of the accumulators across a wgmma fence or
// wait: the asynchronous MMA reads and writes them outside the compiler's view.
template <int N>
__device__ __forceinline__ void wg_fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#if KVS_HAVE_WGMMA
// Orders this warpgroup's register writes (accumulators, A fragments) before its next wgmma.
__device__ __forceinline__ void wg_fence() {
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}
__device__ __forceinline__ void wg_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// d = A B (wgmma_ss_zero: d is only written, so no instruction before it needs d's registers) or
// d += A B, A [64 x 16] and B [16 x 128] both from shared memory, B K-major.
template <class T>
__device__ __forceinline__ void wgmma_ss(float (&d)[64], uint64_t a, uint64_t b);
template <class T>
__device__ __forceinline__ void wgmma_ss_zero(float (&d)[64], uint64_t a, uint64_t b);
#define KVS_WGMMA_SS(T, NAME, TYPES, OPS, SCALE_D)                                 \
  template <>                                                                      \
  __device__ __forceinline__ void NAME<T>(float(&d)[64], uint64_t a, uint64_t b) { \
    asm volatile(                                                                  \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                               \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPES " " KVS_WG_ACC_REGS   \
        ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                          \
        : OPS(d)                                                                   \
        : "l"(a), "l"(b), "n"(SCALE_D));                                           \
  }
KVS_WGMMA_SS(bf16, wgmma_ss, "bf16.bf16", KVS_WG_ACC_OPS, 1)
KVS_WGMMA_SS(bf16, wgmma_ss_zero, "bf16.bf16", KVS_WG_ACC_OUT, 0)
KVS_WGMMA_SS(f16, wgmma_ss, "f16.f16", KVS_WG_ACC_OPS, 1)
KVS_WGMMA_SS(f16, wgmma_ss_zero, "f16.f16", KVS_WG_ACC_OUT, 0)
#undef KVS_WGMMA_SS

// d += A B, A [64 x 16] from registers (the fragment layout above), B [16 x 128] from shared
// memory MN-major (transposed).
template <class T>
__device__ __forceinline__ void wgmma_rs_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t b);
#define KVS_WGMMA_RS_TB(T, TYPES)                                                      \
  template <>                                                                          \
  __device__ __forceinline__ void wgmma_rs_tb<T>(float(&d)[64], const uint32_t(&a)[4], \
                                                 uint64_t b) {                         \
    asm volatile(                                                                      \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                   \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPES " " KVS_WG_ACC_REGS       \
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                \
        : KVS_WG_ACC_OPS(d)                                                            \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(1));                 \
  }
KVS_WGMMA_RS_TB(bf16, "bf16.bf16")
KVS_WGMMA_RS_TB(f16, "f16.f16")
#undef KVS_WGMMA_RS_TB

// d += A B with N = 64: A [64 x 16] from registers, B [16 x 64] from shared memory MN-major
// (transposed; one 64-element panel, so the leading byte offset is not used). 32 accumulators:
// register 4j + e is row g + 8 (e / 2), column 8j + 2t + (e % 2), j < 8.
template <class T>
__device__ __forceinline__ void wgmma_rs_tb_n64(float (&d)[32], const uint32_t (&a)[4], uint64_t b);
#define KVS_WGMMA_RS_TB_N64(T, TYPES)                                                             \
  template <>                                                                                     \
  __device__ __forceinline__ void wgmma_rs_tb_n64<T>(float(&d)[32], const uint32_t(&a)[4],        \
                                                     uint64_t b) {                                \
    asm volatile(                                                                                 \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                              \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPES                                       \
        " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, "      \
        "%18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "                 \
        "{%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                             \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),     \
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), \
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]),           \
          "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),           \
          "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])            \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(1));                            \
  }
KVS_WGMMA_RS_TB_N64(bf16, "bf16.bf16")
KVS_WGMMA_RS_TB_N64(f16, "f16.f16")
#undef KVS_WGMMA_RS_TB_N64

// d += A B, A [64 x 16] from registers, B [16 x 128] from shared memory K-major (not transposed).
template <class T>
__device__ __forceinline__ void wgmma_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b);
#define KVS_WGMMA_RS(T, TYPES)                                                                    \
  template <>                                                                                     \
  __device__ __forceinline__ void wgmma_rs<T>(float(&d)[64], const uint32_t(&a)[4], uint64_t b) { \
    asm volatile(                                                                                 \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                              \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPES " " KVS_WG_ACC_REGS                  \
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"                                           \
        : KVS_WG_ACC_OPS(d)                                                                       \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(1));                            \
  }
KVS_WGMMA_RS(bf16, "bf16.bf16")
KVS_WGMMA_RS(f16, "f16.f16")
#undef KVS_WGMMA_RS
#endif  // KVS_HAVE_WGMMA

}  // namespace kvscope::kernels::cuda
