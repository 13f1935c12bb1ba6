# PyTorch's SDPA on the prefill/ rows' shapes (kernels/BENCHMARKS.md, H200 2026-12-02): causal
# attention over bf16 [1, 32, N, 128], N = 1024, 4096, 16384; run it in the same device call as
# kvscope-cuda-variants: python3 kernels/cuda/bench/torch_prefill_peer.py
import torch, json
from torch_timing import bench
res={'torch': torch.__version__, 'device': torch.cuda.get_device_name(0)}
for N in [1024, 4096, 16384]:
    q=torch.randn(1,32,N,128,device='cuda',dtype=torch.bfloat16); k=torch.randn_like(q); v=torch.randn_like(q)
    ms=bench(lambda: torch.nn.functional.scaled_dot_product_attention(q,k,v,is_causal=True), rep=20)
    res[N]={'ms':ms,'TFLOPs':4*N*N*128*32/2/ms/1e9}
print(json.dumps(res, indent=1))
