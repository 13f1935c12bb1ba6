// The kernel benchmarks: Google Benchmark families over named shape axes (ArgsProduct), written
// against the Backend interface so the same code times the CPU and the GPU. Each iteration's
// time is the backend's own clock (Backend::time_ms: CUDA events on the GPU), reported with
// UseManualTime. Every row carries its bytes and FLOPs as rates and its floor:
//   floor_ms  = max(bytes / measured copy bandwidth, flops / measured GEMM peak)
//   floor_pct = 100 * floor_ms / measured time      (how close the kernel is to the limit)
// Families and their axes (names are what the calibration fit reads back, model/calibration.h):
//   copy/mib                                          device-to-device copy (MiB)
//   fourier_compress/bf16/heads/tokens/head_dim/cdims/m   heads = batch * kv_heads
//   fourier_reconstruct/(same axes)
//   fourier_attention_decode/bf16/batch/q_heads/kv_heads/head_dim/tokens/cdims/m
//   fourier_attention_prefill/(same axes)             causal, q_len = tokens
//   attention_decode/bf16/batch/q_heads/kv_heads/head_dim/tokens
//   attention_prefill/(same axes)                     causal, q_len = tokens
//   gemm/bf16/rows/out/in/bias                        the CCV linear layer and dense layers
//   cosine_rows/bf16/rows/dim, cosine_whole/bf16/rows/dim
// Fourier layouts use sink 4, window 64 and the lowest `cdims` head dims. The rows (shapes) of
// every family are the case_bench_quick and case_bench_full rows of kernels/cases.h.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/backend.h"

namespace kvscope::kernels::bench {

// What the device reaches on the two simplest workloads; the floors divide by these.
struct DeviceMeasurement {
  double copy_bytes_per_s = 0;  // bytes read + written per second, device-to-device copy
  int64_t copy_buffer_bytes = 0;
  double gemm_flops_per_s_bf16 = 0;  // square GEMM, best of a few runs
  double gemm_flops_per_s_f32 = 0;
  int64_t gemm_n = 0;  // the square GEMM's size
  double peak_flops(DType t) const {
    return t == DType::f32 ? gemm_flops_per_s_f32 : gemm_flops_per_s_bf16;
  }
};

// `count` elements of type t on b, uniform in [-1, 1), the same for the same seed.
std::unique_ptr<DeviceBuffer> random_buffer(Backend& b, DType t, size_t count, uint64_t seed);

// The benchmarks' Fourier layout: the lowest `cdims` head dims compressed to m coefficients,
// sink 4, window 64 (kBenchFourierSink, kBenchFourierWindow: kernels/cases.h).
FourierLayout layout_of(int64_t cdims, int64_t m);

// quick: sizes for CI and the 2-core CPU; otherwise the full GPU sizes.
DeviceMeasurement measure_device(Backend& b, bool quick);

// Registers every family with Google Benchmark. `b` and `m` must outlive the run.
void register_benchmarks(Backend& b, const DeviceMeasurement& m, bool quick);

// The profile's device block: backend, name, SMs/threads, memory, driver, the switches in effect
// (DeviceInfo::switches: which implementations ran), the measurements,
// date (UTC, ISO 8601).
nlohmann::json device_block(const Backend& b, const DeviceMeasurement& m);

// Runs what is registered (matching `filter`, a Google Benchmark regex) in-process and returns
// Google Benchmark's own JSON; one progress line per row goes to `progress`.
nlohmann::json run_registered(std::ostream& progress, const std::string& filter = ".");

// `kvscope calibrate`: measure the device, run every family, and return the profile: Google
// Benchmark's JSON plus {"device": device_block(...)}.
struct StepBenchConfig;  // step_bench.h
// With `steps`, the step families of one model's shapes are measured too (step_bench.h).
nlohmann::json calibrate(const std::string& backend, bool quick, std::ostream& progress,
                         const std::string& filter = ".", const StepBenchConfig* steps = nullptr);

}  // namespace kvscope::kernels::bench
