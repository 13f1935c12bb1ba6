# A check of edge_mma_kernel's fragment indexing (kernels/cuda/fourier_attention.cu) without a GPU:
# its ldmatrix / mma.sync m16n8k16 addressing, transcribed, run on an emulation of those
# instructions (the PTX ISA's fragment layouts), against a direct computation of the partial
# record (running max, sum and weighted sum of V over the block's edge rows). Values stay exact
# floats, so this checks where each value goes, not bf16 rounding; the kernel itself is tested on
# the GPU by test_kernels_cuda. A transcription: keep it in step with the kernel.
#   python3 kernels/tools/edge_mma_emulation.py
import math, random

XS_PAD = 8
CHUNK = 32


def ldmatrix_x4(addrs, mem, trans=False):
    # addrs[lane] -> (array, index of the first of 8 consecutive elements of a row)
    regs = [[None] * 4 for _ in range(32)]
    for i in range(4):
        rows = [addrs[8 * i + r] for r in range(8)]
        mat = [[mem[rows[r][0]][rows[r][1] + c] for c in range(8)] for r in range(8)]
        if trans:
            mat = [[mat[c][r] for c in range(8)] for r in range(8)]
        for lane in range(32):
            g, tq = lane // 4, lane % 4
            regs[lane][i] = (mat[g][2 * tq], mat[g][2 * tq + 1])
    return regs


def mma(d, a, b):
    # d[lane][4], a[lane][4] pairs, b[lane][2] pairs
    A = [[0.0] * 16 for _ in range(16)]
    B = [[0.0] * 8 for _ in range(16)]
    for lane in range(32):
        g, tq = lane // 4, lane % 4
        for (reg, row, col) in ((0, g, 2 * tq), (1, g + 8, 2 * tq), (2, g, 2 * tq + 8), (3, g + 8, 2 * tq + 8)):
            A[row][col], A[row][col + 1] = a[lane][reg]
        for (reg, k) in ((0, 2 * tq), (1, 2 * tq + 8)):
            B[k][g], B[k + 1][g] = b[lane][reg]
    C = [[0.0] * 8 for _ in range(16)]
    for lane in range(32):
        g, tq = lane // 4, lane % 4
        C[g][2 * tq], C[g][2 * tq + 1], C[g + 8][2 * tq], C[g + 8][2 * tq + 1] = d[lane]
    for m in range(16):
        for n in range(8):
            C[m][n] += sum(A[m][k] * B[k][n] for k in range(16))
    for lane in range(32):
        g, tq = lane // 4, lane % 4
        d[lane] = [C[g][2 * tq], C[g][2 * tq + 1], C[g + 8][2 * tq], C[g + 8][2 * tq + 1]]


def run(X, DK, ncols, qlen, tokens, sink, window, causal, rows_per_split, blk_y, seed):
    rnd = random.Random(seed)
    C = X - DK
    XS = X + XS_PAD
    SS = CHUNK + 1
    E = sink + window
    # token sources: kept dims per token, edge rows per edge row
    kk = [[rnd.gauss(0, 1) for _ in range(DK)] for _ in range(tokens)]
    vk = [[rnd.gauss(0, 1) for _ in range(DK)] for _ in range(tokens)]
    ke = [[rnd.gauss(0, 1) for _ in range(C)] for _ in range(E)]
    ve = [[rnd.gauss(0, 1) for _ in range(C)] for _ in range(E)]
    q = [[rnd.gauss(0, 1) for _ in range(X)] for _ in range(ncols)]  # row order: kept, compressed
    scale_log2 = 1 / math.sqrt(X) * 1.4426950408889634

    def token(r):
        if tokens <= E:
            return r if r < tokens else -1
        return r if r < sink else tokens - window + (r - sink)

    r_begin = blk_y * rows_per_split
    r_end = min(E, r_begin + rows_per_split)
    # shared memory as one flat space per array
    krows = [[0.0] * XS for _ in range(CHUNK)]
    vrows = [[0.0] * XS for _ in range(CHUNK)]
    qs = [[q[j][x] if j < ncols else 0.0 for x in range(X)] + [0.0] * XS_PAD for j in range(8)]
    sc = [[None] * SS for _ in range(8)]
    mrun = [-math.inf] * 8
    lrun = [0.0] * 8
    alpha = [None] * 8
    oacc = [[[0.0] * 4 for _ in range(32)] for _ in range(8)]  # [warp][lane][4]

    def stage(r0, n):
        for rr in range(CHUNK):
            t = token(r0 + rr) if rr < n else -1
            for x in range(X):
                if t < 0:
                    kv = vv = 0.0
                else:
                    kv = kk[t][x] if x < DK else ke[r0 + rr][x - DK]
                    vv = vk[t][x] if x < DK else ve[r0 + rr][x - DK]
                krows[rr][x] = kv
                vrows[rr][x] = vv

    flat = {}
    r0 = r_begin
    while r0 < r_end:
        n = min(CHUNK, r_end - r0)
        stage(r0, n)
        for warp in range(2):
            s2 = [[[0.0] * 4 for _ in range(32)] for _ in range(2)]
            for ks in range(0, X // 16, 2):
                qaddr = [(lane % 8, 16 * ks + (lane // 8) * 8) for lane in range(32)]
                qb = ldmatrix_x4(qaddr, qs)
                for u in range(2):
                    kaddr = [(16 * warp + lane % 16, 16 * (ks + u) + 8 * (lane // 16)) for lane in range(32)]
                    a = ldmatrix_x4(kaddr, krows)
                    bq = [[qb[lane][2 * u], qb[lane][2 * u + 1]] for lane in range(32)]
                    mma(s2[u], a, bq)
            for lane in range(32):
                g, tq = lane // 4, lane % 4
                for e in range(4):
                    rr = 16 * warp + g + 8 * (e // 2)
                    j = 2 * tq + e % 2
                    t = token(r0 + rr) if rr < n else -1
                    qpos = tokens - qlen + j % qlen
                    ok = t >= 0 and j < ncols and not (causal and t > qpos)
                    sc[j][rr] = (s2[0][lane][e] + s2[1][lane][e]) * scale_log2 if ok else -math.inf
        for j in range(8):
            s = [sc[j][lane] for lane in range(32)]
            mold = mrun[j]
            mnew = max(mold, max(s))
            base = 0.0 if mnew == -math.inf else mnew
            w = [2 ** (x - base) if x != -math.inf else 0.0 for x in s]
            for lane in range(32):
                sc[j][lane] = w[lane]
            a_ = 2 ** (mold - base) if mold != -math.inf else 0.0
            alpha[j] = a_
            mrun[j] = mnew
            lrun[j] = lrun[j] * a_ + sum(w)
        for warp in range(X // 16):
            for lane in range(32):
                tq = lane % 4
                oacc[warp][lane][0] *= alpha[2 * tq]
                oacc[warp][lane][1] *= alpha[2 * tq + 1]
                oacc[warp][lane][2] *= alpha[2 * tq]
                oacc[warp][lane][3] *= alpha[2 * tq + 1]
            for kk16 in range(CHUNK // 16):
                vaddr = []
                for lane in range(32):
                    vrow = (lane % 8) + (lane // 16) * 8
                    vaddr.append((16 * kk16 + vrow, 16 * warp + 8 * ((lane // 8) % 2)))
                a = ldmatrix_x4(vaddr, vrows, trans=True)
                wb = []
                for lane in range(32):
                    g, tq = lane // 4, lane % 4
                    base = 16 * kk16 + 2 * tq
                    wb.append([(sc[g][base], sc[g][base + 1]), (sc[g][base + 8], sc[g][base + 9])])
                mma(oacc[warp], a, wb)
        r0 += CHUNK
    # the record
    O = [[None] * DK for _ in range(8)]
    OC = [[None] * C for _ in range(8)]
    for warp in range(X // 16):
        for lane in range(32):
            g, tq = lane // 4, lane % 4
            for e in range(4):
                x = 16 * warp + g + 8 * (e // 2)
                j = 2 * tq + e % 2
                if j < ncols:
                    if x < DK:
                        O[j][x] = oacc[warp][lane][e]
                    else:
                        OC[j][x - DK] = oacc[warp][lane][e]
    # direct: m = max log2 score, l = sum 2^(s - m), acc = sum 2^(s - m) v
    worst = 0.0
    for j in range(ncols):
        scores, vals = [], []
        for r in range(r_begin, r_end):
            t = token(r)
            qpos = tokens - qlen + j % qlen
            if t < 0 or (causal and t > qpos):
                continue
            krow = kk[t] + ke[r]
            vrow = vk[t] + ve[r]
            scores.append(sum(q[j][x] * krow[x] for x in range(X)) * scale_log2)
            vals.append(vrow)
        m = max(scores) if scores else -math.inf
        base = 0.0 if m == -math.inf else m
        l = sum(2 ** (s - base) for s in scores)
        acc = [sum(2 ** (s - base) * v[x] for s, v in zip(scores, vals)) for x in range(X)]
        assert (m == mrun[j]) or abs(m - mrun[j]) < 1e-9, (j, m, mrun[j])
        assert abs(l - lrun[j]) <= 1e-9 * max(1, abs(l)), (j, l, lrun[j])
        got = O[j] + OC[j]
        for x in range(X):
            worst = max(worst, abs(got[x] - acc[x]) / (1e-9 + max(abs(a) for a in acc) if acc else 1))
    return worst


cases = [
    # X, DK, ncols, qlen, tokens, sink, window, causal, rows_per_split, blk_y
    (128, 64, 4, 1, 5000, 4, 64, True, 32, 0),
    (128, 64, 4, 1, 5000, 4, 64, True, 32, 2),   # the partial last chunk (4 rows)
    (128, 64, 8, 2, 999, 4, 0, True, 32, 0),     # q_len 2: causal masks inside the edge
    (64, 32, 8, 1, 777, 4, 0, True, 32, 0),      # head_dim 64
    (128, 64, 4, 1, 60, 4, 64, True, 32, 1),     # cache shorter than the edge
    (128, 64, 4, 2, 1200, 8, 300, True, 64, 1),  # two chunks per block
    (128, 64, 6, 3, 1500, 4, 100, False, 96, 1), # three chunks, 6 columns, non-causal
]
worst = 0.0
for c in cases:
    err = run(*c, seed=hash(c) & 0xffff)
    worst = max(worst, err)
    print(c, "max rel err %.2e" % err)
if worst > 1e-9:
    raise SystemExit("edge_mma_kernel emulation: the record differs from the direct computation")
print("ok")
