"""Golden cases for normalisation (batch_norm train/eval with running statistics, group_norm,
SAM's LayerNorm2d), scaled-dot-product attention, EVA-02's 2-D RoPE and the papers' losses
(soft Dice, Polyp-PVT structure loss, multilabel soft margin, negative cosine). Float64
PyTorch; attention and RoPE are written out explicitly (PyTorch 1.13 has no
scaled_dot_product_attention; RoPE re-implements timm's RotaryEmbeddingCat construction,
timm/layers/pos_embed_sincos.py, in float64). Values are written with 9 significant digits
(exact for float32 inputs) to keep the fixture small."""
import math
import torch
import torch.nn.functional as F
from common import case, rand, write


def bn(x, w=None, b=None, training=False, momentum=0.1, eps=1e-5, rm=None, rv=None):
    rm_t = torch.tensor(rm) if rm is not None else None
    rv_t = torch.tensor(rv) if rv is not None else None
    y = F.batch_norm(x, rm_t, rv_t, w, b, training, momentum, eps)
    return (y, rm_t, rv_t) if rm_t is not None and training else y


def layer_norm2d(x, w=None, b=None, eps=1e-6):
    # segment_anything/modeling/common.py::LayerNorm2d, generalised to absent affine.
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    y = (x - u) / torch.sqrt(s + eps)
    shape = [1, -1] + [1] * (x.dim() - 2)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


def attention(q, k, v, mask=None, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        s = s + mask
    return torch.softmax(s, dim=-1) @ v


def attention_const_mask(q, k, v, mask=None, scale=None):
    return attention(q, k, v, torch.tensor(mask["data"]).reshape(mask["shape"]), scale)


def rope_tables(hd, gh, gw, ref=None, theta=10000.0):
    nb = hd // 4
    bands = 1.0 / (theta ** (torch.arange(0, nb, 1, dtype=torch.float64) / nb))
    t = [torch.arange(s, dtype=torch.float64) for s in (gh, gw)]
    if ref is not None:
        t = [x / f * r for x, f, r in zip(t, (gh, gw), ref)]
    grid = torch.stack(torch.meshgrid(t, indexing="ij"), dim=-1).unsqueeze(-1)  # [gh, gw, 2, 1]
    pos = grid * bands  # [gh, gw, 2, nb]: [y*b, x*b]
    sin = pos.sin().reshape(gh * gw, -1).repeat_interleave(2, -1)
    cos = pos.cos().reshape(gh * gw, -1).repeat_interleave(2, -1)
    return sin, cos


def rot(x):
    return torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)


def apply_rope(x, hd, gh, gw, start=0, ref=None, theta=10000.0):
    sin, cos = rope_tables(hd, gh, gw, ref, theta)
    t = x[..., start:, :]
    return torch.cat([x[..., :start, :], t * cos + rot(t) * sin], dim=-2)


def bce_logits(x, y):
    return F.softplus(x) - x * y


def structure_loss(pred, mask, faithful=True):
    # EndoKED_SEG/Train.py::structure_loss; faithful: reduce='none' acts as reduce=True (mean BCE).
    weit = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    if faithful:
        wbce = F.binary_cross_entropy_with_logits(pred, mask, reduce="none")
    else:
        wbce = F.binary_cross_entropy_with_logits(pred, mask, reduction="none")
    wbce = (weit * wbce).sum(dim=(2, 3)) / weit.sum(dim=(2, 3))
    p = torch.sigmoid(pred)
    inter = ((p * mask) * weit).sum(dim=(2, 3))
    union = ((p + mask) * weit).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


def soft_dice(p, t, smooth=1.0, dims=None):
    dims = dims if dims is not None else list(range(1, p.dim()))
    inter = (p * t).sum(dim=dims)
    dice = (2 * inter + smooth) / (p.sum(dim=dims) + t.sum(dim=dims) + smooth)
    return 1 - dice.mean()


def zero_row(x):
    x[0, 2] = 0  # a zero vector: its norm's gradient is 0 (PyTorch masks it), not NaN
    return x


def neg_cosine(p, t, eps=1e-8):
    pn = p.norm(dim=-1).clamp_min(eps)
    tn = t.norm(dim=-1).clamp_min(eps)
    return -((p * t).sum(-1) / (pn * tn)).mean()


def binary(*shape, seed):
    return (rand(*shape, seed=seed, low=0, high=1) > 0.5).to(torch.float64)


def blob_mask(b, h, w, seed):
    # A filled ellipse per image: flat regions and an edge, as a polyp mask.
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    out = []
    for _ in range(b):
        cy, cx = torch.rand(2, generator=g) * torch.tensor([h, w]) * 0.5 + torch.tensor([h, w]) * 0.25
        ry, rx = torch.rand(2, generator=g) * torch.tensor([h, w]) * 0.2 + torch.tensor([h, w]) * 0.15
        out.append((((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1).to(torch.float64))
    return torch.stack(out).unsqueeze(1)


def rlist(n, seed, low, high):
    return [float(v) for v in rand(n, seed=seed, low=low, high=high).tolist()]


cases = [
    # batch norm: training updates running stats (outputs 1, 2); eval uses them.
    case("bn_train_2d", bn, [rand(3, 5, 3, 5, seed=1, low=-2, high=3), rand(5, seed=2), rand(5, seed=3)],
         {"training": True, "momentum": 0.1, "eps": 1e-5, "rm": rlist(5, 4, -1, 1), "rv": rlist(5, 5, 0.5, 2)}),
    case("bn_train_1d", bn, [rand(7, 5, seed=6), rand(5, seed=7), rand(5, seed=8)],
         {"training": True, "momentum": 0.3, "eps": 1e-5, "rm": rlist(5, 9, -1, 1), "rv": rlist(5, 10, 0.5, 2)}),
    case("bn_train_1d_ncl_noaffine_nostats", bn, [rand(2, 3, 9, seed=11, low=0, high=4)], {"training": True, "eps": 1e-3}),
    case("bn_eval_2d", bn, [rand(2, 3, 5, 5, seed=12), rand(3, seed=13), rand(3, seed=14)],
         {"training": False, "eps": 1e-5, "rm": rlist(3, 15, -1, 1), "rv": rlist(3, 16, 0.5, 2)}),
    case("bn_eval_1d", bn, [rand(5, 7, seed=17), rand(7, seed=18), rand(7, seed=19)],
         {"training": False, "eps": 1e-5, "rm": rlist(7, 20, -1, 1), "rv": rlist(7, 21, 0.5, 2)}),
    # group norm: groups 1, 2, C; one without affine on [N, C, L].
    case("gn_g1", lambda x, w, b, g: F.group_norm(x, g, w, b, 1e-5), [rand(2, 6, 3, 3, seed=22), rand(6, seed=23), rand(6, seed=24)], {"g": 1}),
    case("gn_g2", lambda x, w, b, g: F.group_norm(x, g, w, b, 1e-5), [rand(2, 6, 3, 3, seed=25), rand(6, seed=26), rand(6, seed=27)], {"g": 2}),
    case("gn_gC", lambda x, w, b, g: F.group_norm(x, g, w, b, 1e-5), [rand(2, 6, 3, 3, seed=28), rand(6, seed=29), rand(6, seed=30)], {"g": 6}),
    case("gn_g3_noaffine", lambda x, g: F.group_norm(x, g, None, None, 1e-5), [rand(3, 6, 7, seed=31)], {"g": 3}),
    # LayerNorm2d
    case("ln2d", layer_norm2d, [rand(2, 5, 3, 4, seed=32), rand(5, seed=33), rand(5, seed=34)]),
    case("ln2d_noaffine", layer_norm2d, [rand(1, 7, 2, 3, seed=35, low=-3, high=1)]),
    # attention (q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv]); masks are constants in args.
    case("attn_L1_D16", attention, [rand(1, 1, 1, 16, seed=40), rand(1, 1, 1, 16, seed=41), rand(1, 1, 1, 16, seed=42)]),
    case("attn_L7_D32_mask", attention_const_mask, [rand(1, 1, 7, 32, seed=43), rand(1, 1, 7, 32, seed=44), rand(1, 1, 7, 32, seed=45)],
         {"mask": {"shape": [7, 7], "data": rlist(49, 46, -4, 1)}}),
    case("attn_7x33_D16_Dv8_keymask", attention_const_mask, [rand(1, 1, 7, 16, seed=47), rand(1, 1, 33, 16, seed=48), rand(1, 1, 33, 8, seed=49)],
         {"mask": {"shape": [1, 1, 1, 33], "data": [0.0] * 30 + [-1e4] * 3}}),
    case("attn_33x7_D16_Dv8_scale", attention, [rand(1, 1, 33, 16, seed=50), rand(1, 1, 7, 16, seed=51), rand(1, 1, 7, 8, seed=52)], {"scale": 0.3}),
    case("attn_L7_D64_Dv16", attention, [rand(1, 1, 7, 64, seed=53), rand(1, 1, 7, 64, seed=54), rand(1, 1, 7, 16, seed=55)]),
    case("attn_2x3_D128_Dv32", attention, [rand(1, 1, 2, 128, seed=56), rand(1, 1, 3, 128, seed=57), rand(1, 1, 3, 32, seed=58)]),
    # RoPE: tables (no grad) and the rotation with a cls token left untouched.
    case("rope_tables_16_3x4", lambda hd, gh, gw: rope_tables(hd, gh, gw), [], {"hd": 16, "gh": 3, "gw": 4}, grad=False),
    case("rope_tables_8_2x3_ref4x6_theta100", lambda hd, gh, gw, ref, theta: rope_tables(hd, gh, gw, ref, theta), [],
         {"hd": 8, "gh": 2, "gw": 3, "ref": [4, 6], "theta": 100.0}, grad=False),
    case("rope_apply_cls", apply_rope, [rand(1, 2, 13, 16, seed=60)], {"hd": 16, "gh": 3, "gw": 4, "start": 1}),
    case("rope_apply_nocls", apply_rope, [rand(1, 3, 6, 8, seed=61)], {"hd": 8, "gh": 2, "gw": 3, "start": 0}),
    # losses
    case("soft_dice", soft_dice, [rand(2, 1, 5, 6, seed=70, low=0, high=1), binary(2, 1, 5, 6, seed=71)]),
    case("soft_dice_per_class", soft_dice, [rand(3, 2, 4, 4, seed=72, low=0, high=1), binary(3, 2, 4, 4, seed=73)], {"smooth": 1.0, "dims": [0, 2, 3]}),
    case("structure_faithful", structure_loss, [rand(2, 1, 16, 18, seed=74, low=-3, high=3), blob_mask(2, 16, 18, seed=75)], {"faithful": True}),
    case("structure_weighted", structure_loss, [rand(2, 1, 16, 18, seed=76, low=-3, high=3), blob_mask(2, 16, 18, seed=77)], {"faithful": False}),
    case("multilabel_soft_margin", F.multilabel_soft_margin_loss, [rand(4, 7, seed=78, low=-3, high=3), binary(4, 7, seed=79)]),
    case("neg_cosine", neg_cosine, [rand(2, 5, 12, seed=80), rand(2, 5, 12, seed=81)]),
    case("neg_cosine_zero_row", neg_cosine, [zero_row(rand(2, 5, 12, seed=82)), rand(2, 5, 12, seed=83)]),
]

# The structure loss's mask is data: the engine gives it no gradient through the weights.
for c in cases:
    if c["name"].startswith("structure"):
        c["grads"][1] = None


def shrink(record):
    """9 significant digits: float32 inputs round-trip exactly; outputs keep far more than the tolerances."""
    for key in ("inputs", "outputs", "cotangents", "grads"):
        for e in record.get(key) or []:
            if e and e["dtype"] == "f32":
                e["data"] = [float(f"{v:.9g}") for v in e["data"]]
    return record


write("attention_norm", [shrink(c) for c in cases])
