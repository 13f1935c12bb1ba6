# PyTorch peers of the fourier/ rows (kernels/BENCHMARKS.md, H200 2026-12-02): rfft+slice and irfft
# of f32 [64, 32768, 64] at M = 256, and a bf16 copy; run it in the same device call as
# kvscope-cuda-variants: python3 kernels/cuda/bench/torch_fourier_peers.py
import torch, json
from torch_timing import bench
dev='cuda'
res={'device': torch.cuda.get_device_name(0), 'torch': torch.__version__}
x=torch.randn(2**30//2, device=dev, dtype=torch.bfloat16); y=torch.empty_like(x)
ms=bench(lambda: y.copy_(x)); res['copy_TBps']=2*x.numel()*2/ms/1e9; del x,y
K=torch.randn(64,32768,64,device=dev,dtype=torch.float32); M=256
comp=lambda: torch.fft.rfft(K,dim=1)[:, :M, :].contiguous()
res['rfft_slice_f32_64x32768x64_M256_ms']=bench(comp)
C=comp()
res['irfft_f32_64x32768x64_M256_ms']=bench(lambda: torch.fft.irfft(C,n=32768,dim=1))
print(json.dumps(res,indent=1))
