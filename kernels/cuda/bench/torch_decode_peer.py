# PyTorch peers of the decode/ rows at the shape (kernels/BENCHMARKS.md): batch 8, 32 query
# heads, head_dim 128, N = 32768, bf16. SDPA over the full uncompressed cache, with 8 KV heads
# (GQA, the rows' shape) and with 32 (one KV head per query head, as the issue's 0.37 ms); and
# reconstruct-then-SDPA: the lower 64 dims of K and V rebuilt from M = 256 rfft coefficients per
# dim (irfft, f32, then bf16), joined to the kept upper 64 and attended over by SDPA. The sink and
# window rows that kvscope keeps exact are left out here; they are 68 of 32768 rows. Run it in the
# same device call as kvscope-cuda-variants:
#   python3 kernels/cuda/bench/torch_decode_peer.py
import json
import torch
from torch_timing import bench

dev = 'cuda'
F = torch.nn.functional.scaled_dot_product_attention
B, HQ, HKV, D, N, DC, M = 8, 32, 8, 128, 32768, 64, 256
res = {'device': torch.cuda.get_device_name(0), 'torch': torch.__version__}
q = torch.randn(B, HQ, 1, D, device=dev, dtype=torch.bfloat16)
k = torch.randn(B, HKV, N, D, device=dev, dtype=torch.bfloat16)
v = torch.randn_like(k)
res['sdpa_gqa8_full_cache_ms'] = bench(lambda: F(q, k, v, enable_gqa=True))
del k, v
k32 = torch.randn(B, HQ, N, D, device=dev, dtype=torch.bfloat16)
v32 = torch.randn_like(k32)
res['sdpa_32kv_full_cache_ms'] = bench(lambda: F(q, k32, v32))
del k32, v32
# The compressed cache: kept upper dims in bf16, M complex coefficients per compressed dim.
kk = torch.randn(B, HKV, N, D - DC, device=dev, dtype=torch.bfloat16)
vk = torch.randn_like(kk)
kc = torch.randn(B, HKV, M, DC, device=dev, dtype=torch.complex64)
vc = torch.randn_like(kc)


def reconstruct_then_sdpa():
    kr = torch.fft.irfft(kc, n=N, dim=2).to(torch.bfloat16)
    vr = torch.fft.irfft(vc, n=N, dim=2).to(torch.bfloat16)
    return F(q, torch.cat([kr, kk], dim=3), torch.cat([vr, vk], dim=3), enable_gqa=True)


res['reconstruct_then_sdpa_ms'] = bench(reconstruct_then_sdpa, rep=10)
print(json.dumps(res, indent=1))
