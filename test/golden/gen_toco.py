"""Golden fixture for models/toco.ts: a float64 PyTorch re-implementation of ToCo's CAM branch
(rulixiang/ToCo model/model_seg_neg.py `network.forward`, model/losses.py `get_masked_ptc_loss`,
utils/camutils.py `multi_scale_cam2` and `label_to_aff_mask`) on an EVA-02 trunk (timm `Eva`
blocks: separate q/k/v, 2-D RoPE, sub-LN SwiGLU; the same re-implementation as gen_eva02.py,
repeated here in its smallest form), written from those facts.

One tiny model (16x16 input, patch 4 -> 4x4 tokens, D 16, depth 3, 2 heads, aux block -2) and:
  train:       main/aux logits (GMP + bias-free 1x1 conv), CAM and aux-CAM, the loss
               MLSM(cls) + MLSM(cls_aux) + 0.2 PTC(x4, token labels with 0/1/255), every gradient;
  multiscale:  multi_scale_cam2 at scales (1, 0.5, 1.5) with flips (pos_embed resampled
               bilinearly, RoPE on the new grid referenced to the 4x4 training grid);
  gradcam:     Grad-CAM of the main logit w.r.t. the final-LN tokens and the aux block's output,
               by torch autograd (retain_grad on the activation).
Floats are written as the shortest decimal that round-trips float32."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import write_fixture
from torch_layers import SwiGLU

torch.set_default_dtype(torch.float64)
EPS = 1e-6


def rope_tables(head_dim, feat_shape, ref_feat_shape):
    nb = head_dim // 4
    bands = 1.0 / (10000.0 ** (torch.arange(nb, dtype=torch.float64) / nb))
    t = [torch.arange(s, dtype=torch.float64) / s * r for s, r in zip(feat_shape, ref_feat_shape)]
    grid = torch.stack(torch.meshgrid(t, indexing="ij"), dim=-1)
    pos = grid.unsqueeze(-1) * bands
    n = feat_shape[0] * feat_shape[1]
    return pos.sin().reshape(n, -1).repeat_interleave(2, -1), pos.cos().reshape(n, -1).repeat_interleave(2, -1)


def rot(x):
    return torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, rope):
        B, N, C = x.shape
        q, k, v = (p(x).reshape(B, N, self.num_heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        sin, cos = rope
        q = torch.cat([q[:, :, :1], q[:, :, 1:] * cos + rot(q[:, :, 1:]) * sin], 2)
        k = torch.cat([k[:, :, :1], k[:, :, 1:] * cos + rot(k[:, :, 1:]) * sin], 2)
        attn = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = SwiGLU(dim, int(dim * 8 / 3))

    def forward(self, x, rope):
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)


class Encoder(nn.Module):
    """EVA-02 trunk returning (cls, final-LN patch tokens, aux block patch tokens) as ToCo's forward_features."""

    def __init__(self, cfg):
        super().__init__()
        d, self.patch, self.grid0 = cfg["dim"], cfg["patch"], cfg["img"] // cfg["patch"]
        self.heads, self.aux_layer = cfg["heads"], cfg["aux_layer"]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid0 ** 2 + 1, d))
        self.patch_embed = PatchEmbed(d, cfg["patch"])
        self.blocks = nn.ModuleList([Block(d, cfg["heads"]) for _ in range(cfg["depth"])])
        self.norm = nn.LayerNorm(d, eps=EPS)

    def forward_features(self, x):
        t = self.patch_embed.proj(x)
        B, D, gh, gw = t.shape
        t = t.flatten(2).transpose(1, 2)
        pos = self.pos_embed
        if (gh, gw) != (self.grid0, self.grid0):
            patch = self.pos_embed[:, 1:].transpose(1, 2).reshape(1, D, self.grid0, self.grid0)
            patch = F.interpolate(patch, size=(gh, gw), mode="bilinear", align_corners=False)
            pos = torch.cat([self.pos_embed[:, :1], patch.reshape(1, D, gh * gw).transpose(1, 2)], 1)
        t = torch.cat([self.cls_token.expand(B, -1, -1), t], 1) + pos
        rope = rope_tables(D // self.heads, (gh, gw), (self.grid0, self.grid0))
        embeds = []
        for blk in self.blocks:
            t = blk(t, rope)
            embeds.append(t)
        t = self.norm(t)
        embeds[-1] = t
        return t[:, 0], t[:, 1:], embeds[self.aux_layer][:, 1:], (gh, gw)


class Network(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.classifier = nn.Conv2d(cfg["dim"], 1, 1, bias=False)
        self.aux_classifier = nn.Conv2d(cfg["dim"], 1, 1, bias=False)

    @staticmethod
    def to_2d(x, h, w):
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)

    def forward(self, x, cam_only=False):
        _, _x, x_aux, (h, w) = self.encoder.forward_features(x)
        _x4, _x_aux = self.to_2d(_x, h, w), self.to_2d(x_aux, h, w)
        if cam_only:
            return F.conv2d(_x_aux, self.aux_classifier.weight), F.conv2d(_x4, self.classifier.weight)
        cls_aux = self.aux_classifier(F.adaptive_max_pool2d(_x_aux, (1, 1))).view(-1, 1)
        cls_x4 = self.classifier(F.adaptive_max_pool2d(_x4, (1, 1))).view(-1, 1)
        return cls_x4, cls_aux, _x4, _x_aux


def label_to_aff_mask(cam_label, ignore_index=255):
    b, h, w = cam_label.shape
    lab = cam_label.reshape(b, 1, -1)
    rep = lab.repeat([1, lab.shape[-1], 1])
    rep_t = rep.permute(0, 2, 1)
    aff = (rep == rep_t).type(torch.long)
    for i in range(b):
        aff[i, :, rep[i, 0, :] == ignore_index] = ignore_index
        aff[i, rep[i, 0, :] == ignore_index, :] = ignore_index
    aff[:, range(h * w), range(h * w)] = ignore_index
    return aff


def get_masked_ptc_loss(inputs, mask):
    b, c, h, w = inputs.shape
    x = F.normalize(inputs.reshape(b, c, h * w), p=2, dim=1, eps=1e-8)
    cos = torch.abs(torch.matmul(x.transpose(1, 2), x))
    pos, neg = mask == 1, mask == 0
    return 0.5 * (1 - torch.sum(pos * cos) / (pos.sum() + 1)) + 0.5 * torch.sum(neg * cos) / (neg.sum() + 1)


def multi_scale_cam2(model, inputs, scales):
    b, c, h, w = inputs.shape
    with torch.no_grad():
        cams, auxs = [], []
        for s in [1.0] + [s for s in scales if s != 1.0]:
            x = inputs if s == 1.0 else F.interpolate(inputs, size=(int(s * h), int(s * w)), mode="bilinear", align_corners=False)
            cam_aux, cam = model(torch.cat([x, x.flip(-1)], 0), cam_only=True)
            for src, dst in ((cam, cams), (cam_aux, auxs)):
                r = F.interpolate(src, size=(h, w), mode="bilinear", align_corners=False)
                dst.append(F.relu(torch.max(r[:b], r[b:].flip(-1))))
        out = []
        for lst in (cams, auxs):
            cam = torch.sum(torch.stack(lst, 0), 0)
            cam = cam + F.adaptive_max_pool2d(-cam, (1, 1))
            cam /= F.adaptive_max_pool2d(cam, (1, 1)) + 1e-5
            out.append(cam)
    return out


def grad_cam(model, x, layer):
    """Grad-CAM of the main logit w.r.t. the patch tokens of `layer` (final-LN tokens or the aux block's output)."""
    enc = model.encoder
    t = enc.patch_embed.proj(x)
    B, D, gh, gw = t.shape
    t = torch.cat([enc.cls_token.expand(B, -1, -1), t.flatten(2).transpose(1, 2)], 1) + enc.pos_embed
    rope = rope_tables(D // enc.heads, (gh, gw), (enc.grid0, enc.grid0))
    act = None
    for i, blk in enumerate(enc.blocks):
        t = blk(t, rope)
        if layer == "aux" and i == len(enc.blocks) + enc.aux_layer:
            act = t
            act.retain_grad()
    t = enc.norm(t)
    if layer == "final":
        act = t
        act.retain_grad()
    y = model.classifier(F.adaptive_max_pool2d(Network.to_2d(t[:, 1:], gh, gw), (1, 1))).view(-1)
    y.sum().backward()
    a, g = act[:, 1:], act.grad[:, 1:]
    alpha = g.mean(1, keepdim=True)
    return F.relu((a * alpha).sum(-1)).reshape(B, 1, gh, gw)


def uniform(shape, seed, a):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(*shape, generator=g) * 2 - 1) * a).to(torch.float32).to(torch.float64)


def seed_weights(model, seed):
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            s = seed * 1000 + i
            leaf = name.rsplit(".", 1)[-1]
            owner = model.get_submodule(name.rsplit(".", 1)[0])
            if isinstance(owner, nn.LayerNorm):
                p.copy_(uniform(p.shape, s, 0.2) + (1.0 if leaf == "weight" else 0.0))
            elif leaf == "weight":
                p.copy_(uniform(p.shape, s, math.sqrt(3.0 / p[0].numel())))
            elif leaf == "bias":
                p.copy_(uniform(p.shape, s, 0.1))
            else:
                p.copy_(uniform(p.shape, s, 0.5))


def enc(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.bool):
        return {"shape": list(t.shape), "dtype": "i32", "data": [int(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "f32", "data": [float(str(np.float32(v))) for v in t.reshape(-1).tolist()]}


CFG = dict(img=16, patch=4, dim=16, depth=3, heads=2, aux_layer=-2)
SEED = 21
torch.manual_seed(SEED)
model = Network(CFG)
seed_weights(model, SEED)
x = uniform([2, 3, 16, 16], SEED + 7, 1.0)
y = torch.tensor([[1.0], [0.0]])
# Token labels with all three values (image 2 is negative: background everywhere, as ToCo's cls-weighted CAM).
token_labels = torch.tensor([[0, 0, 1, 1, 255, 1, 1, 0, 0, 255, 1, 0, 0, 0, 255, 0], [0] * 16])

cls, cls_aux, x4, xaux = model(x)
ptc = get_masked_ptc_loss(x4, label_to_aff_mask(token_labels.reshape(2, 4, 4)))
loss = F.multilabel_soft_margin_loss(cls, y) + F.multilabel_soft_margin_loss(cls_aux, y) + 0.2 * ptc
loss.backward()
cam = F.conv2d(x4, model.classifier.weight)
cam_aux = F.conv2d(xaux, model.aux_classifier.weight)
sd = model.state_dict()
train = {
    "keys": list(sd.keys()), "state": {k: enc(v) for k, v in sd.items()},
    "input": enc(x), "labels": enc(y), "token_labels": enc(token_labels),
    "cls": enc(cls), "cls_aux": enc(cls_aux), "cam": enc(cam), "cam_aux": enc(cam_aux),
    "ptc": ptc.item(), "loss": loss.item(),
    "grads": {k: enc(p.grad) for k, p in model.named_parameters()},
}
model.zero_grad()
ms_cam, ms_aux = multi_scale_cam2(model, x, [1.0, 0.5, 1.5])
gc_final = grad_cam(model, x, "final")
model.zero_grad()
gc_aux = grad_cam(model, x, "aux")

out = {
    "family": "toco", "generator": "test/golden/gen_toco.py", "config": CFG, "train": train,
    "multiscale": {"scales": [1.0, 0.5, 1.5], "cam": enc(ms_cam), "cam_aux": enc(ms_aux)},
    "gradcam": {"final": enc(gc_final), "aux": enc(gc_aux)},
}
write_fixture("toco", out)
