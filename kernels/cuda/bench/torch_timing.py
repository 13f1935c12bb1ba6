# CUDA-event timing for the PyTorch peer scripts in this folder: the median of `rep` runs of fn,
# each between its own event pair, after `warm` untimed runs.
import torch
def bench(fn, warm=5, rep=30):
    for _ in range(warm): fn()
    torch.cuda.synchronize(); ts=[]
    for _ in range(rep):
        s=torch.cuda.Event(enable_timing=True); e=torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ts.sort(); return ts[len(ts)//2]
