"""Golden fixture for models/eva02.ts: a float64 PyTorch re-implementation of timm's `Eva`
(timm/models/eva.py, timm/layers/pos_embed_sincos.py, timm/layers/mlp.py; EVA-02, arXiv
2303.11331) and of EVA-02's masked-image-modelling model (baaivision/EVA EVA-02/asuka
modeling_pretrain.py, engine_for_pretraining.py), written here from those facts (timm is not a
dependency). Module and parameter names equal timm's, so the state_dict keys are timm's keys.

Two micro models cover both EVA-02 layouts:
  packed: fused qkv (q_bias, v_bias, no k bias) + packed GluMlp (SwiGLU, Ti/S style), square grid
  subln:  separate q/k/v projections + SwiGLU with LayerNorm(H) before fc2 (B/L style), a 3x5
          grid and ref_feat_shape (4, 4) so the RoPE grid is rescaled
Each case stores the seeded weights, the input, the logits, the cross-entropy loss and the
gradient of the loss for every parameter. The MIM case (on the subln backbone) stores the mask,
the teacher features, the prediction on masked positions, the -mean(cos) loss and every gradient.
Floats are written as the shortest decimal that round-trips float32 (keeps the file small)."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import write_fixture
from torch_layers import SwiGLU

torch.set_default_dtype(torch.float64)
EPS = 1e-6  # timm.layers.LayerNorm default, used by every EVA-02 norm


# ---- RoPE (timm RotaryEmbeddingCat, in_pixels=False) -----------------------------------------

def rope_tables(head_dim, feat_shape, ref_feat_shape=None, temperature=10000.0):
    num_bands = head_dim // 4
    bands = 1.0 / (temperature ** (torch.arange(num_bands, dtype=torch.float64) / num_bands))
    t = [torch.arange(s, dtype=torch.float64) for s in feat_shape]
    if ref_feat_shape is not None:
        t = [x / f * r for x, f, r in zip(t, feat_shape, ref_feat_shape)]
    grid = torch.stack(torch.meshgrid(t, indexing="ij"), dim=-1)  # [H, W, 2] as (y, x)
    pos = grid.unsqueeze(-1) * bands  # [H, W, 2, bands]
    n = feat_shape[0] * feat_shape[1]
    sin = pos.sin().reshape(n, -1).repeat_interleave(2, -1)  # [N, head_dim]
    cos = pos.cos().reshape(n, -1).repeat_interleave(2, -1)
    return sin, cos


def rot(x):
    return torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)


def apply_rope(x, sin, cos):
    return x * cos + rot(x) * sin


# ---- model ------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, in_chans, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, C, H, W] -> [B, N, D]


class EvaAttention(nn.Module):
    def __init__(self, dim, heads, fused):
        super().__init__()
        self.num_heads = heads
        if fused:
            self.qkv = nn.Linear(dim, dim * 3, bias=False)
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.register_buffer("k_bias", torch.zeros(dim), persistent=False)
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_proj = nn.Linear(dim, dim)
            self.k_proj = nn.Linear(dim, dim, bias=False)
            self.v_proj = nn.Linear(dim, dim)
            self.qkv = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, rope):
        B, N, C = x.shape
        if self.qkv is not None:
            qkv = F.linear(x, self.qkv.weight, torch.cat((self.q_bias, self.k_bias, self.v_bias)))
            q, k, v = qkv.reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            q = self.q_proj(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
            k = self.k_proj(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
            v = self.v_proj(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
        sin, cos = rope
        q = torch.cat([q[:, :, :1], apply_rope(q[:, :, 1:], sin, cos)], 2)
        k = torch.cat([k[:, :, :1], apply_rope(k[:, :, 1:], sin, cos)], 2)
        attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        x = attn.softmax(-1) @ v
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class GluMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden * 2)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        a, g = self.fc1(x).chunk(2, -1)
        return self.fc2(F.silu(a) * g)


class EvaBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["embed_dim"]
        self.norm1 = nn.LayerNorm(d, eps=EPS)
        self.attn = EvaAttention(d, cfg["num_heads"], cfg["qkv_fused"])
        self.norm2 = nn.LayerNorm(d, eps=EPS)
        hidden = int(d * cfg["mlp_ratio"])
        self.mlp = SwiGLU(d, hidden) if cfg["scale_mlp"] else GluMlp(d, hidden)

    def forward(self, x, rope):
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


def grid_of(cfg):
    return [cfg["img_size"][0] // cfg["patch_size"], cfg["img_size"][1] // cfg["patch_size"]]


def make_rope(cfg):
    return rope_tables(cfg["embed_dim"] // cfg["num_heads"], grid_of(cfg), cfg["ref_feat_shape"])


class Eva(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["embed_dim"]
        gh, gw = grid_of(cfg)
        self.patch_embed = PatchEmbed(3, d, cfg["patch_size"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, gh * gw + 1, d))
        self.rope = make_rope(cfg)
        self.blocks = nn.ModuleList([EvaBlock(cfg) for _ in range(cfg["depth"])])
        self.fc_norm = nn.LayerNorm(d, eps=EPS)  # global_pool 'avg': norm is Identity
        self.head = nn.Linear(d, cfg["num_classes"])

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x, self.rope)
        return self.head(self.fc_norm(x[:, 1:].mean(1)))


class EvaMim(nn.Module):
    """EVA-02 MIM: masked patch embeddings become mask_token, final norm, lm_head on masked positions."""

    def __init__(self, cfg, teacher_dim):
        super().__init__()
        d = cfg["embed_dim"]
        gh, gw = grid_of(cfg)
        self.patch_embed = PatchEmbed(3, d, cfg["patch_size"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, gh * gw + 1, d))
        self.rope = make_rope(cfg)
        self.blocks = nn.ModuleList([EvaBlock(cfg) for _ in range(cfg["depth"])])
        self.norm = nn.LayerNorm(d, eps=EPS)
        self.lm_head = nn.Linear(d, teacher_dim)

    def forward(self, x, bool_masked_pos):
        x = self.patch_embed(x)
        B, L, _ = x.shape
        w = bool_masked_pos.unsqueeze(-1).type_as(x)
        x = x * (1 - w) + self.mask_token.expand(B, L, -1) * w
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x, self.rope)
        x = self.norm(x)[:, 1:]
        return self.lm_head(x[bool_masked_pos])


# ---- seeded weights and encoding ----------------------------------------------------------------

def uniform(shape, seed, a):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(*shape, generator=g) * 2 - 1) * a).to(torch.float32).to(torch.float64)


def seed_weights(model, seed):
    """Weights of order-one activations (timm's .02 init would make every gradient tiny)."""
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            s = seed * 1000 + i
            leaf = name.rsplit(".", 1)[-1]
            owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            if isinstance(owner, nn.LayerNorm):
                p.copy_(uniform(p.shape, s, 0.2) + (1.0 if leaf == "weight" else 0.0))
            elif leaf == "weight":
                fan_in = p[0].numel()
                p.copy_(uniform(p.shape, s, math.sqrt(3.0 / fan_in)))
            elif leaf in ("bias", "q_bias", "v_bias"):
                p.copy_(uniform(p.shape, s, 0.1))
            else:  # cls_token, mask_token, pos_embed
                p.copy_(uniform(p.shape, s, 0.5))


def f32(v):
    return float(str(np.float32(v)))


def enc(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.bool):
        return {"shape": list(t.shape), "dtype": "i32", "data": [int(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "f32", "data": [f32(v) for v in t.reshape(-1).tolist()]}


def classification_case(name, cfg, seed, labels):
    torch.manual_seed(seed)
    model = Eva(cfg)
    seed_weights(model, seed)
    x = uniform([len(labels), 3, *cfg["img_size"]], seed + 7, 1.0)
    y = torch.tensor(labels)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    sd = model.state_dict()
    return {
        "name": name, "config": cfg,
        "keys": list(sd.keys()),
        "state": {k: enc(v) for k, v in sd.items()},
        "input": enc(x), "labels": enc(y),
        "logits": enc(logits), "loss": loss.item(),
        "grads": {k: enc(p.grad) for k, p in model.named_parameters()},
        "rope": {"sin": enc(model.rope[0]), "cos": enc(model.rope[1])},
    }


def mim_case(name, cfg, seed, teacher_dim, masks):
    torch.manual_seed(seed)
    model = EvaMim(cfg, teacher_dim)
    seed_weights(model, seed)
    b = len(masks)
    gh, gw = grid_of(cfg)
    x = uniform([b, 3, *cfg["img_size"]], seed + 7, 1.0)
    mask = torch.zeros(b, gh * gw, dtype=torch.bool)
    for i, m in enumerate(masks):
        mask[i, m] = True
    teacher = uniform([b, gh * gw, teacher_dim], seed + 8, 1.0)
    pred = model(x, mask)
    loss = -F.cosine_similarity(pred, teacher[mask], dim=-1).mean()
    loss.backward()
    sd = model.state_dict()
    return {
        "name": name, "config": cfg, "teacher_dim": teacher_dim,
        "keys": list(sd.keys()),
        "state": {k: enc(v) for k, v in sd.items()},
        "input": enc(x), "mask": enc(mask), "teacher": enc(teacher),
        "pred": enc(pred), "loss": loss.item(),
        "grads": {k: enc(p.grad) for k, p in model.named_parameters()},
    }


PACKED = dict(img_size=[16, 16], patch_size=4, embed_dim=24, depth=2, num_heads=2, mlp_ratio=8 / 3,
              qkv_fused=True, scale_mlp=False, num_classes=3, ref_feat_shape=None)
SUBLN = dict(img_size=[12, 20], patch_size=4, embed_dim=24, depth=2, num_heads=2, mlp_ratio=8 / 3,
             qkv_fused=False, scale_mlp=True, num_classes=3, ref_feat_shape=[4, 4])

out = {
    "family": "eva02", "generator": "test/golden/gen_eva02.py",
    "cases": [
        classification_case("packed_fused", PACKED, 11, [2, 0]),
        classification_case("subln_separate", SUBLN, 12, [1, 2]),
    ],
    # Unequal mask counts per sample (6 and 4 of 15): selection flattens across the batch.
    "mim": mim_case("mim_subln", SUBLN, 13, 8, [[0, 1, 5, 6, 7, 14], [3, 4, 8, 9]]),
}
write_fixture("eva02", out)
