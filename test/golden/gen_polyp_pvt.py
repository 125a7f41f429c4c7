"""Golden state for the Polyp-PVT parity test (test/models/polyp-pvt.test.ts): a float64 PyTorch
re-implementation of PVTv2 + the Polyp-PVT head, with module names equal to the reference's
state_dict keys (DengPingFan/Polyp-PVT lib/pvtv2.py and lib/pvt.py; timm and Polyp-PVT are not
installed here, so the model is written out below). Train mode throughout (BatchNorm uses batch
statistics and updates its running ones); drop path 0 so the forward is deterministic.

Config: smaller than Polyp-PVT-mu (spec section 4), whose 484k parameters and their gradients
would not fit a JSON fixture: PVTv2 dims [16, 16, 16, 24], heads [1, 1, 2, 2], MLP ratio 2,
SR [8, 4, 2, 1], depths [1, 1, 1, 1]; decoder channel 8, SAM state 4, mids 2 (AdaptiveAvgPool 4,
4 nodes). Every code path of mu is kept (SR at 8/4/2 and none, several heads, the CA hidden width
dims[0] // 16 = 1, all CFM/SAM pieces). Input [2, 3, 64, 64] (pixels k/255), a binary mask of
one ellipse per image.

Records: the state_dict before the step (weights quantised to multiples of 2^-12 so both sides
hold the same values exactly; stored as integers and a scale), input, mask, P1 and P2, the loss
structure_loss(P1) + structure_loss(P2), every parameter gradient, and the BatchNorm running
statistics after the forward, and P1/P2 of the first image in eval mode after that step. Loss variant: the reference's code (Polyp-PVT Train.py) passes
reduce='none' to binary_cross_entropy_with_logits, which PyTorch reads as the legacy reduce=True,
so its BCE term is the plain mean; the weighted wBCE of the paper is recorded too (loss_weighted)
and `loss_variant` names the one the gradients belong to.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import HERE

torch.set_default_dtype(torch.float64)

CONFIG = {
    "backbone": {"inChans": 3, "embedDims": [16, 16, 16, 24], "numHeads": [1, 1, 2, 2], "mlpRatios": [2, 2, 2, 2],
                 "depths": [1, 1, 1, 1], "srRatios": [8, 4, 2, 1], "qkvBias": True, "dropPathRate": 0.0, "normEps": 1e-6},
    "channel": 8, "samPlaneMid": 4, "samMids": 2,
}
# The reference's presets (pvt_v2_b0/b1/b2), to count their parameters with PyTorch.
PRESETS = {k: {"inChans": 3, "embedDims": d, "numHeads": [1, 2, 5, 8], "mlpRatios": [8, 8, 4, 4], "depths": dep,
               "srRatios": [8, 4, 2, 1], "qkvBias": True, "dropPathRate": 0.1, "normEps": 1e-6}
           for k, d, dep in [("b0", [32, 64, 160, 256], [2, 2, 2, 2]), ("b1", [64, 128, 320, 512], [2, 2, 2, 2]),
                             ("b2", [64, 128, 320, 512], [3, 4, 6, 3])]}
PRESETS["mu"] = {**PRESETS["b0"], "embedDims": [16, 32, 64, 128], "numHeads": [1, 1, 2, 4], "mlpRatios": [4, 4, 4, 4], "depths": [1, 1, 1, 1]}
LOSS_VARIANT = "mean_bce"  # the reference code's behaviour (see the docstring)
SCALE = 2.0 ** -12


# ---- PVTv2 ---------------------------------------------------------------------------------

def tokens_to_map(x, h, w):
    b, n, c = x.shape
    return x.transpose(1, 2).reshape(b, c, h, w)


class OverlapPatchEmbed(nn.Module):
    def __init__(self, patch, stride, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, patch, stride, patch // 2)
        self.norm = nn.LayerNorm(dim)  # eps 1e-5 in the reference

    def forward(self, x):
        y = self.proj(x)
        return self.norm(y.flatten(2).transpose(1, 2)), y.shape[2], y.shape[3]


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias, sr):
        super().__init__()
        self.heads, self.sr_ratio = heads, sr
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, sr)
            self.norm = nn.LayerNorm(dim)  # eps 1e-5 in the reference

    def forward(self, x, h, w):
        b, n, c = x.shape
        hd = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, hd).permute(0, 2, 1, 3)
        src = x
        if self.sr_ratio > 1:
            src = self.norm(self.sr(tokens_to_map(x, h, w)).flatten(2).transpose(1, 2))
        kv = self.kv(src).reshape(b, -1, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ kv[0].transpose(-2, -1) * hd ** -0.5, dim=-1)
        return self.proj((att @ kv[1]).transpose(1, 2).reshape(b, n, c))


class DWConv(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x, h, w):
        return self.dwconv(tokens_to_map(x, h, w)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, h, w):
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), h, w)))


class Block(nn.Module):
    def __init__(self, dim, heads, ratio, qkv_bias, sr, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias, sr)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * ratio))

    def forward(self, x, h, w):
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class PVTv2(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["embedDims"]
        for i in range(4):
            cin = c["inChans"] if i == 0 else d[i - 1]
            setattr(self, f"patch_embed{i + 1}", OverlapPatchEmbed(7 if i == 0 else 3, 4 if i == 0 else 2, cin, d[i]))
        for i in range(4):
            setattr(self, f"block{i + 1}", nn.ModuleList([
                Block(d[i], c["numHeads"][i], c["mlpRatios"][i], c["qkvBias"], c["srRatios"][i], c["normEps"])
                for _ in range(c["depths"][i])]))
            setattr(self, f"norm{i + 1}", nn.LayerNorm(d[i], eps=c["normEps"]))

    def forward(self, x):
        outs = []
        for i in range(1, 5):
            x, h, w = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                x = blk(x, h, w)
            x = tokens_to_map(getattr(self, f"norm{i}")(x), h, w)
            outs.append(x)
        return outs


# ---- Polyp-PVT head ------------------------------------------------------------------------

class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, k, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))  # no ReLU, as the reference


def up2(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class CFM(nn.Module):
    def __init__(self, c):
        super().__init__()
        for i in range(1, 5):
            setattr(self, f"conv_upsample{i}", BasicConv2d(c, c, 3, 1))
        self.conv_upsample5 = BasicConv2d(2 * c, 2 * c, 3, 1)
        self.conv_concat2 = BasicConv2d(2 * c, 2 * c, 3, 1)
        self.conv_concat3 = BasicConv2d(3 * c, 3 * c, 3, 1)
        self.conv4 = BasicConv2d(3 * c, c, 3, 1)

    def forward(self, a, b, c):
        b1 = self.conv_upsample1(up2(a)) * b
        c1 = self.conv_upsample2(up2(up2(a))) * self.conv_upsample3(up2(b)) * c
        b2 = self.conv_concat2(torch.cat([b1, self.conv_upsample4(up2(a))], 1))
        c2 = self.conv_concat3(torch.cat([c1, self.conv_upsample5(up2(b2))], 1))
        return self.conv4(c2)


class GCN(nn.Module):
    def __init__(self, state, nodes):
        super().__init__()
        self.conv1 = nn.Conv1d(nodes, nodes, 1)
        self.conv2 = nn.Conv1d(state, state, 1, bias=False)

    def forward(self, x):
        h = self.conv1(x.transpose(1, 2)).transpose(1, 2) - x
        return F.relu(self.conv2(h))


class SAM(nn.Module):
    def __init__(self, cin, mid, mids):
        super().__init__()
        self.s, self.mids = mid, mids
        self.conv_state = nn.Conv2d(cin, mid, 1)
        self.conv_proj = nn.Conv2d(cin, mid, 1)
        self.gcn = GCN(mid, mids * mids)
        self.conv_extend = nn.Conv2d(mid, cin, 1, bias=False)

    def forward(self, x, edge):
        n, _, h, w = x.shape
        edge = torch.softmax(F.interpolate(edge, size=(h, w), mode="nearest"), dim=1)[:, 1:2]
        state = self.conv_state(x).reshape(n, self.s, -1)
        proj = self.conv_proj(x)
        anchor = F.adaptive_avg_pool2d(proj * edge, self.mids + 2)[:, :, 1:-1, 1:-1].reshape(n, self.s, -1)
        assign = torch.softmax(anchor.transpose(1, 2) @ proj.reshape(n, self.s, -1), dim=1)
        rel = self.gcn(state @ assign.transpose(1, 2))
        return x + self.conv_extend((rel @ assign).reshape(n, self.s, h, w))


class ChannelAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 16, 1, bias=False)
        self.fc2 = nn.Conv2d(c // 16, c, 1, bias=False)

    def forward(self, x):
        mlp = lambda t: self.fc2(F.relu(self.fc1(t)))
        return torch.sigmoid(mlp(F.adaptive_avg_pool2d(x, 1)) + mlp(F.adaptive_max_pool2d(x, 1)))


class SpatialAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x):
        return torch.sigmoid(self.conv1(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))


class PolypPVT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, d = cfg["channel"], cfg["backbone"]["embedDims"]
        self.backbone = PVTv2(cfg["backbone"])
        self.Translayer2_0 = BasicConv2d(d[0], c, 1)
        self.Translayer2_1 = BasicConv2d(d[1], c, 1)
        self.Translayer3_1 = BasicConv2d(d[2], c, 1)
        self.Translayer4_1 = BasicConv2d(d[3], c, 1)
        self.CFM = CFM(c)
        self.ca = ChannelAttention(d[0])
        self.sa = SpatialAttention()
        self.SAM = SAM(c, cfg["samPlaneMid"], cfg["samMids"])
        self.out_SAM = nn.Conv2d(c, 1, 1)
        self.out_CFM = nn.Conv2d(c, 1, 1)

    def forward(self, x):
        x1, x2, x3, x4 = self.backbone(x)
        x1 = self.ca(x1) * x1
        cim = self.sa(x1) * x1
        cfm = self.CFM(self.Translayer4_1(x4), self.Translayer3_1(x3), self.Translayer2_1(x2))
        t2 = F.interpolate(self.Translayer2_0(cim), scale_factor=0.5, mode="bilinear", align_corners=True)
        sam = self.SAM(cfm, t2)
        p1 = F.interpolate(self.out_CFM(cfm), scale_factor=8, mode="bilinear")
        p2 = F.interpolate(self.out_SAM(sam), scale_factor=8, mode="bilinear")
        return p1, p2


def structure_loss(pred, mask, variant):
    weit = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    if variant == "mean_bce":  # what reduce='none' (legacy reduce=True) computes: a scalar mean
        wbce = F.binary_cross_entropy_with_logits(pred, mask)
    else:
        wbce = F.binary_cross_entropy_with_logits(pred, mask, reduction="none")
        wbce = (weit * wbce).sum(dim=(2, 3)) / weit.sum(dim=(2, 3))
    p = torch.sigmoid(pred)
    inter = (p * mask * weit).sum(dim=(2, 3))
    union = ((p + mask) * weit).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


# ---- fixture -------------------------------------------------------------------------------

def seeded_weights(model, g):
    """Random weights at a useful scale (U(+-1/sqrt(fan_in)); norms' weights near 1), on the 2^-12 grid."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name or ".bn." in name):
                v = (1 + 0.4 * (torch.rand(p.shape, generator=g) - 0.5)) if name.endswith("weight") else 0.2 * (torch.rand(p.shape, generator=g) - 0.5)
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 16
                v = (torch.rand(p.shape, generator=g) * 2 - 1) / math.sqrt(fan_in)
            p.copy_(torch.round(v / SCALE) * SCALE)


def ints(t, scale):
    return [int(v) for v in torch.round(t.detach().reshape(-1) / scale).tolist()]


def floats(t):
    return [float("%.6g" % v) for v in t.detach().reshape(-1).tolist()]


def quantised(t, scale):
    return {"shape": list(t.shape), "dtype": "i32" if not t.is_floating_point() else "f32", "scale": scale, "q": ints(t, scale)}


def encoded(t):
    return {"shape": list(t.shape), "dtype": "f32", "data": floats(t)}


def ellipse_masks(b, size, g):
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    out = []
    for _ in range(b):
        cy, cx, ry, rx = (torch.rand(4, generator=g) * torch.tensor([0.4, 0.4, 0.2, 0.2]) + torch.tensor([0.3, 0.3, 0.12, 0.12])) * size
        out.append((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).to(torch.float64))
    return torch.stack(out).unsqueeze(1)


def main():
    g = torch.Generator().manual_seed(20240611)
    model = PolypPVT(CONFIG)
    seeded_weights(model, g)
    model.train()
    state0 = {k: quantised(v, SCALE if v.is_floating_point() else 1) for k, v in model.state_dict().items()}
    pixels = torch.randint(0, 256, (2, 3, 64, 64), generator=g)
    x = pixels.to(torch.float64) / 255
    mask = ellipse_masks(2, 64, g)
    p1, p2 = model(x)
    loss = structure_loss(p1, mask, LOSS_VARIANT) + structure_loss(p2, mask, LOSS_VARIANT)
    with torch.no_grad():
        loss_weighted = structure_loss(p1, mask, "weighted_bce") + structure_loss(p2, mask, "weighted_bce")
    loss.backward()
    running = {k: encoded(v) for k, v in model.state_dict().items() if "running_" in k}
    model.eval()  # BatchNorm on the running statistics the step left behind
    with torch.no_grad():
        e1, e2 = model(x[:1])
    fixture = {
        "family": "polyp_pvt", "generator": "test/golden/gen_polyp_pvt.py", "config": CONFIG, "loss_variant": LOSS_VARIANT,
        "state_dict": state0,
        "input": {"shape": list(x.shape), "dtype": "f32", "scale": 1 / 255, "q": pixels.reshape(-1).tolist()},
        "mask": {"shape": list(mask.shape), "dtype": "f32", "scale": 1, "q": ints(mask, 1)},
        "p1": encoded(p1), "p2": encoded(p2), "loss": float(loss), "loss_weighted": float(loss_weighted),
        "grads": {k: encoded(p.grad) for k, p in model.named_parameters()},
        "running_after": running,
        "eval_p1": encoded(e1), "eval_p2": encoded(e2),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "backbone_num_parameters": sum(p.numel() for p in model.backbone.parameters()),
        "pvt_v2_num_parameters": {k: sum(p.numel() for p in PVTv2(c).parameters()) for k, c in PRESETS.items()},
    }
    path = os.path.join(HERE, "fixtures", "polyp_pvt.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print(f"wrote {path}: {os.path.getsize(path) / 1e6:.2f} MB, {fixture['num_parameters']} parameters, loss {float(loss):.6f}")


if __name__ == "__main__":
    main()
