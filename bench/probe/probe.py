import torch
H, Hk, D = 4, 2, 64
lens = [5, 11, 3]
tot = sum(lens)
cu = torch.tensor([0, 5, 16, 19], dtype=torch.int32, device="cuda")
q = torch.randn(tot, H, D, device="cuda", dtype=torch.bfloat16)
k = torch.randn(tot, Hk, D, device="cuda", dtype=torch.bfloat16)
v = torch.randn(tot, Hk, D, device="cuda", dtype=torch.bfloat16)
out, lse, rng, unused, dbg = torch.ops.aten._flash_attention_forward(q, k, v, cu, cu, 11, 11, 0.0, True, False, scale=None, window_size_left=2, window_size_right=0)
print("out", out.shape, "lse", lse.shape, lse.dtype, "rng", rng.shape, rng.dtype, "unused", unused.shape, unused.dtype)
# reference
ref = []
for s, e in zip(cu[:-1].tolist(), cu[1:].tolist()):
    qq = q[s:e].transpose(0, 1).float(); kk = k[s:e].transpose(0, 1).float().repeat_interleave(2, 0); vv = v[s:e].transpose(0, 1).float().repeat_interleave(2, 0)
    L = e - s
    i = torch.arange(L, device="cuda")
    m = (i[None] <= i[:, None]) & (i[:, None] - i[None] < 3)
    sc = qq @ kk.transpose(1, 2) / D ** 0.5
    sc = sc.masked_fill(~m, float("-inf"))
    ref.append(((sc.softmax(-1) @ vv).transpose(0, 1), torch.logsumexp(sc, -1)))
r = torch.cat([a for a, _ in ref])
print("max diff out", (out.float() - r).abs().max().item())
rl = torch.cat([b for _, b in ref], dim=1)
print("lse vs ref (if H,total):", (lse - rl).abs().max().item() if lse.shape == rl.shape else "shape differs")
g = torch.randn_like(out)
dq, dk, dv = torch.ops.aten._flash_attention_backward(g, q, k, v, out, lse, cu, cu, 11, 11, 0.0, True, rng, unused, scale=None, window_size_left=2, window_size_right=0)
print("dq", dq.shape, "dk", dk.shape)
# Non-varlen batch shape
qb = torch.randn(2, 7, H, D, device="cuda", dtype=torch.bfloat16)
kb = torch.randn(2, 7, Hk, D, device="cuda", dtype=torch.bfloat16)
o2, l2, *_ = torch.ops.aten._flash_attention_forward(qb, kb, kb, None, None, 7, 7, 0.0, True, False)
print("batched lse", l2.shape)
# efficient attention lse
qe = torch.randn(2, H, 40, D, device="cuda", dtype=torch.bfloat16)
ke = torch.randn(2, H, 40, D, device="cuda", dtype=torch.bfloat16)
o3, l3, s3, off3 = torch.ops.aten._scaled_dot_product_efficient_attention(qe, ke, ke, None, True)
print("efficient lse", l3.shape)
print(torch.backends.cuda.flash_sdp_enabled(), torch.__version__)
