"""PyTorch re-implementation of PVTv2 and the Polyp-PVT head (DengPingFan/Polyp-PVT lib/pvtv2.py
and lib/pvt.py; module names equal the reference's state_dict keys), shared by the golden
fixture generator (gen_polyp_pvt.py, float64) and the PyTorch benchmark peer
(test/bench/peers/torch_bench.py, float32). Configs are dicts: see PRESETS and polyp_pvt_config.
No drop path: the fixture needs a deterministic forward."""
import torch
import torch.nn as nn
import torch.nn.functional as F

# The reference's presets (pvt_v2_b0/b1/b2), to count their parameters with PyTorch.
PRESETS = {k: {"inChans": 3, "embedDims": d, "numHeads": [1, 2, 5, 8], "mlpRatios": [8, 8, 4, 4], "depths": dep,
               "srRatios": [8, 4, 2, 1], "qkvBias": True, "dropPathRate": 0.1, "normEps": 1e-6}
           for k, d, dep in [("b0", [32, 64, 160, 256], [2, 2, 2, 2]), ("b1", [64, 128, 320, 512], [2, 2, 2, 2]),
                             ("b2", [64, 128, 320, 512], [3, 4, 6, 3])]}
PRESETS["mu"] = {**PRESETS["b0"], "embedDims": [16, 32, 64, 128], "numHeads": [1, 1, 2, 4], "mlpRatios": [4, 4, 4, 4], "depths": [1, 1, 1, 1]}


def polyp_pvt_config(backbone="b2", channel=32, sam_plane_mid=16, sam_mids=4):
    """The full Polyp-PVT head (channel 32, SAM(32, 16, 4)) on a PVTv2 preset."""
    return {"backbone": PRESETS[backbone], "channel": channel, "samPlaneMid": sam_plane_mid, "samMids": sam_mids}


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
