# PyTorch peers of the fourier/ rows (kernels/BENCHMARKS.md, H200 2026-12-02): rfft+slice and irfft
# of f32 [64, 32768, 64] at M = 256, and a bf16 copy; run it in the same device call as
# kvscope-cuda-variants: python3 kernels/cuda/bench/torch_fourier_peers.py
import torch, json
dev='cuda'
def bench(fn, warm=5, rep=30):
    for _ in range(warm): fn()
    torch.cuda.synchronize(); ts=[]
    for _ in range(rep):
        s=torch.cuda.Event(enable_timing=True); e=torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ts.sort(); return ts[len(ts)//2]
res={'device': torch.cuda.get_device_name(0), 'torch': torch.__version__}
x=torch.randn(2**30//2, device=dev, dtype=torch.bfloat16); y=torch.empty_like(x)
ms=bench(lambda: y.copy_(x)); res['copy_TBps']=2*x.numel()*2/ms/1e9; del x,y
K=torch.randn(64,32768,64,device=dev,dtype=torch.float32); M=256
comp=lambda: torch.fft.rfft(K,dim=1)[:, :M, :].contiguous()
res['rfft_slice_f32_64x32768x64_M256_ms']=bench(comp)
C=comp()
res['irfft_f32_64x32768x64_M256_ms']=bench(lambda: torch.fft.irfft(C,n=32768,dim=1))
print(json.dumps(res,indent=1))
