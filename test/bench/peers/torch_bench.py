"""Peer benchmark: median wall time of one training step in PyTorch (CPU, float32), for comparison
with the engine's benches. Prints one JSON line on stdout.

  /usr/bin/python3 test/bench/peers/torch_bench.py --model vit [--batch 8] [--size 224] [--steps 2] [--warmup 1]
  /usr/bin/python3 test/bench/peers/torch_bench.py --model pvt [--batch 8] [--size 352] [--steps 2] [--warmup 1]

Models (written from spec/papers.md, no timm):
- vit: EVA-02 Ti (§1.2; timm `eva.py` eva02_tiny_patch14_224, BAAI EVA-02 `modeling_finetune.py`,
  `rope.py`): patch 14 conv, cls + learned pos_embed, 12 pre-LN blocks (LN eps 1e-6, no layer
  scale), fused qkv with q/v bias (k bias a zero buffer), 3 heads of 64, 2D RoPE on the patch
  tokens of q and k, packed SwiGLU 192 -> 2*512 -> 192, mean over patch tokens -> LN ->
  Linear(192, 10). Cross-entropy, SGD lr 1e-3.
- pvt: Polyp-PVT on PVTv2-b2 (§2.5; arXiv 2106.13797 and zwyang6/ENDOKED `EndoKED_SEG/lib/pvtv2.py`,
  `lib/pvt.py`, `Train.py`): PVTv2-b2 (dims 64/128/320/512, depths 3/4/6/3, SRA, depthwise-conv
  FFN, drop path 0.1), CIM, translayers, CFM, SAM (graph reasoning) module, two 1-channel heads
  upsampled x8; structure loss on both outputs (BCE term unweighted, as the reference code
  effectively computes), AdamW lr 1e-4 wd 1e-4, gradients clamped by value at 0.5.
Debian's PyTorch starts with one thread: --threads (default 2) sets torch.set_num_threads.
OMP_WAIT_POLICY defaults to PASSIVE (set it in the environment to override): with GNU OpenMP's
default spin-waiting, a step on a busy 2-core machine was measured 10-30x slower (threads spin
while the other thread of the team waits for a core); PASSIVE cost nothing measurable idle.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # read by libgomp when torch loads it

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ---------------------------------------------------------------- EVA-02 Ti

def rope_tables(g, hd=64, ref=16):
    """sin/cos [g*g, hd] of EVA-02's 2D RoPE: bands 10000^(-j/(hd/4)), pos [y*b, x*b] interleaved x2."""
    nb = hd // 4
    bands = 10000.0 ** (-torch.arange(nb, dtype=torch.float64) / nb)
    t = torch.arange(g, dtype=torch.float64) * ref / g
    y, x = torch.meshgrid(t, t, indexing='ij')
    pos = torch.cat([y.reshape(-1, 1) * bands, x.reshape(-1, 1) * bands], dim=1)  # [g*g, hd/2]
    pos = pos.repeat_interleave(2, dim=1)  # [g*g, hd/2] -> [g*g, hd]
    return pos.sin().float(), pos.cos().float()


def rot_pairs(x):
    """[x0, x1, x2, x3, ...] -> [-x1, x0, -x3, x2, ...] on the last dim."""
    x2 = x.unflatten(-1, (-1, 2))  # [..., hd] -> [..., hd/2, 2]
    return torch.stack([-x2[..., 1], x2[..., 0]], dim=-1).flatten(-2)


class EvaAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer('k_bias', torch.zeros(dim), persistent=False)
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, sin, cos):
        B, N, C = x.shape
        qkv = F.linear(x, self.qkv.weight, torch.cat([self.q_bias, self.k_bias, self.v_bias]))
        qkv = qkv.reshape(B, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)  # [B, N, 3D] -> [3, B, H, N, hd]
        q, k, v = qkv.unbind(0)
        q = torch.cat([q[:, :, :1], q[:, :, 1:] * cos + rot_pairs(q[:, :, 1:]) * sin], dim=2)
        k = torch.cat([k[:, :, :1], k[:, :, 1:] * cos + rot_pairs(k[:, :, 1:]) * sin], dim=2)
        attn = (q @ k.transpose(-2, -1)) * self.hd ** -0.5  # [B, H, N, N]
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)  # [B, H, N, hd] -> [B, N, D]
        return self.proj(x)


class EvaBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = EvaAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 2 * hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, sin, cos):
        x = x + self.attn(self.norm1(x), sin, cos)
        a, g = self.fc1(self.norm2(x)).chunk(2, dim=-1)  # [B, N, 2H] -> 2 x [B, N, H]
        return x + self.fc2(F.silu(a) * g)


class Eva02Ti(nn.Module):
    def __init__(self, size=224, dim=192, depth=12, heads=3, hidden=512, patch=14, classes=10):
        super().__init__()
        g = size // patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, g * g + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([EvaBlock(dim, heads, hidden) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)
        sin, cos = rope_tables(g, dim // heads)
        self.register_buffer('rope_sin', sin, persistent=False)
        self.register_buffer('rope_cos', cos, persistent=False)

    def forward(self, img):
        x = self.patch_embed(img).flatten(2).transpose(1, 2)  # [B, 3, S, S] -> [B, P, D]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed  # -> [B, N, D]
        for blk in self.blocks:
            x = blk(x, self.rope_sin, self.rope_cos)
        return self.head(self.fc_norm(x[:, 1:].mean(1)))  # [B, N, D] -> [B, 10]


# ---------------------------------------------------------------- PVTv2-b2

class DropPath(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class SRA(nn.Module):
    def __init__(self, dim, heads, sr):
        super().__init__()
        self.heads, self.hd, self.sr_ratio = heads, dim // heads, sr
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, sr)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.heads, self.hd).transpose(1, 2)  # [B, N, C] -> [B, h, N, hd]
        if self.sr_ratio > 1:
            x = self.sr(x.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)  # -> [B, N/sr^2, C]
            x = self.norm(x)
        kv = self.kv(x).reshape(B, -1, 2, self.heads, self.hd).permute(2, 0, 3, 1, 4)  # -> [2, B, h, M, hd]
        k, v = kv.unbind(0)
        attn = (q @ k.transpose(-2, -1) * self.hd ** -0.5).softmax(-1)  # [B, h, N, M]
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class PvtMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, H, W):
        x = self.fc1(x)
        B, N, C = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class PvtBlock(nn.Module):
    def __init__(self, dim, heads, ratio, sr, dp):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SRA(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = PvtMlp(dim, dim * ratio)
        self.drop_path = DropPath(dp)

    def forward(self, x, H, W):
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        return x + self.drop_path(self.mlp(self.norm2(x), H, W))


class PatchEmbed(nn.Module):
    def __init__(self, cin, dim, k, s):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, k, s, k // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        H, W = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class PVTv2(nn.Module):
    def __init__(self, dims=(64, 128, 320, 512), depths=(3, 4, 6, 3), heads=(1, 2, 5, 8),
                 ratios=(8, 8, 4, 4), srs=(8, 4, 2, 1), drop_path=0.1):
        super().__init__()
        dpr = torch.linspace(0, drop_path, sum(depths)).tolist()
        self.embeds, self.stages, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cur = 0
        for i in range(4):
            self.embeds.append(PatchEmbed(3 if i == 0 else dims[i - 1], dims[i], 7 if i == 0 else 3, 4 if i == 0 else 2))
            self.stages.append(nn.ModuleList([PvtBlock(dims[i], heads[i], ratios[i], srs[i], dpr[cur + j]) for j in range(depths[i])]))
            self.norms.append(nn.LayerNorm(dims[i], eps=1e-6))
            cur += depths[i]

    def forward(self, x):
        outs = []
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms):
            x, H, W = embed(x)
            for blk in blocks:
                x = blk(x, H, W)
            x = norm(x).transpose(1, 2).reshape(x.shape[0], -1, H, W)  # [B, HW, C] -> [B, C, H, W]
            outs.append(x)
        return outs


# ---------------------------------------------------------------- Polyp-PVT decoder

class BasicConv2d(nn.Module):
    """Conv (no bias) + BN; the reference defines a ReLU but never applies it."""
    def __init__(self, cin, cout, k, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


def up2(x):
    return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)


class CFM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cu1, self.cu2, self.cu3, self.cu4 = (BasicConv2d(c, c, 3, 1) for _ in range(4))
        self.cu5 = BasicConv2d(2 * c, 2 * c, 3, 1)
        self.cat2 = BasicConv2d(2 * c, 2 * c, 3, 1)
        self.cat3 = BasicConv2d(3 * c, 3 * c, 3, 1)
        self.conv4 = BasicConv2d(3 * c, c, 3, 1)

    def forward(self, a, b, c):
        b1 = self.cu1(up2(a)) * b
        c1 = self.cu2(up2(up2(a))) * self.cu3(up2(b)) * c
        b2 = self.cat2(torch.cat([b1, self.cu4(up2(a))], 1))
        c2 = self.cat3(torch.cat([c1, self.cu5(up2(b2))], 1))
        return self.conv4(c2)


class GCN(nn.Module):
    def __init__(self, num_state, num_node):
        super().__init__()
        self.conv1 = nn.Conv1d(num_node, num_node, 1)
        self.conv2 = nn.Conv1d(num_state, num_state, 1, bias=False)

    def forward(self, x):
        h = self.conv1(x.permute(0, 2, 1)).permute(0, 2, 1) - x
        return F.relu(self.conv2(h))


class SAMModule(nn.Module):
    def __init__(self, num_in=32, mid=16, mids=4):
        super().__init__()
        self.num_s, self.num_n, self.mids = mid, mids * mids, mids
        self.conv_state = nn.Conv2d(num_in, mid, 1)
        self.conv_proj = nn.Conv2d(num_in, mid, 1)
        self.gcn = GCN(mid, self.num_n)
        self.conv_extend = nn.Conv2d(mid, num_in, 1, bias=False)

    def forward(self, x, edge):
        n, _, h, w = x.shape
        edge = F.interpolate(edge, (h, w))  # nearest
        edge = edge.softmax(1)[:, 1:2]
        state = self.conv_state(x).view(n, self.num_s, -1)  # [n, 16, hw]
        proj = self.conv_proj(x)
        anchor = F.adaptive_avg_pool2d(proj * edge, self.mids + 2)[:, :, 1:-1, 1:-1].reshape(n, self.num_s, -1)
        pr = torch.matmul(anchor.permute(0, 2, 1), proj.reshape(n, self.num_s, -1)).softmax(1)  # [n, 16 nodes, hw]
        nodes = torch.matmul(state, pr.permute(0, 2, 1))  # [n, 16, 16]
        out = torch.matmul(self.gcn(nodes), pr).view(n, self.num_s, h, w)
        return x + self.conv_extend(out)


class ChannelAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 16, 1, bias=False)
        self.fc2 = nn.Conv2d(c // 16, c, 1, bias=False)

    def forward(self, x):
        f = lambda t: self.fc2(F.relu(self.fc1(t)))
        return torch.sigmoid(f(F.adaptive_avg_pool2d(x, 1)) + f(F.adaptive_max_pool2d(x, 1)))


class SpatialAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x):
        return torch.sigmoid(self.conv1(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))


class PolypPVT(nn.Module):
    def __init__(self, channel=32):
        super().__init__()
        self.backbone = PVTv2()
        self.trans2_0 = BasicConv2d(64, channel, 1)
        self.trans2_1 = BasicConv2d(128, channel, 1)
        self.trans3_1 = BasicConv2d(320, channel, 1)
        self.trans4_1 = BasicConv2d(512, channel, 1)
        self.cfm = CFM(channel)
        self.ca = ChannelAttention(64)
        self.sa = SpatialAttention()
        self.sam = SAMModule()
        self.out_sam = nn.Conv2d(channel, 1, 1)
        self.out_cfm = nn.Conv2d(channel, 1, 1)

    def forward(self, x):
        x1, x2, x3, x4 = self.backbone(x)
        x1 = self.ca(x1) * x1
        cim = self.sa(x1) * x1
        cfm = self.cfm(self.trans4_1(x4), self.trans3_1(x3), self.trans2_1(x2))
        t2 = F.interpolate(self.trans2_0(cim), scale_factor=0.5, mode='bilinear', align_corners=True)
        sam = self.sam(cfm, t2)
        p1 = F.interpolate(self.out_cfm(cfm), scale_factor=8, mode='bilinear')
        p2 = F.interpolate(self.out_sam(sam), scale_factor=8, mode='bilinear')
        return p1, p2


def structure_loss(pred, mask):
    weit = 1 + 5 * torch.abs(F.avg_pool2d(mask, 31, 1, 15) - mask)
    wbce = F.binary_cross_entropy_with_logits(pred, mask)  # reference's reduce='none' means 'mean'
    p = torch.sigmoid(pred)
    inter = (p * mask * weit).sum((2, 3))
    union = ((p + mask) * weit).sum((2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


# ---------------------------------------------------------------- timing

def run(args):
    torch.manual_seed(0)
    B, S = args.batch, args.size
    if args.model == 'vit':
        model = Eva02Ti(S)
        x = torch.randn(B, 3, S, S)
        y = torch.arange(B) % 10
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def loss_fn():
            return F.cross_entropy(model(x), y)
        clip = None
    else:
        model = PolypPVT()
        x = torch.rand(B, 3, S, S)
        blobs = F.interpolate(torch.randn(B, 1, S // 32, S // 32), size=(S, S), mode='bilinear', align_corners=False)
        y = (blobs > 0.5).float()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)

        def loss_fn():
            p1, p2 = model(x)
            return structure_loss(p1, y) + structure_loss(p2, y)
        clip = 0.5
    model.train()
    params = sum(p.numel() for p in model.parameters())

    losses = []

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if clip is not None:
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.data.clamp_(-clip, clip)
        opt.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f'non-finite loss {losses[-1]}')
        return (time.perf_counter() - t0) * 1e3

    tw = time.perf_counter()
    for _ in range(args.warmup):
        step()
    warmup_ms = (time.perf_counter() - tw) * 1e3
    steps_ms = [step() for _ in range(args.steps)]
    ms = statistics.median(steps_ms)
    return {
        'peer': 'torch', 'model': 'eva02-ti' if args.model == 'vit' else 'polyp-pvt-b2',
        'batch': B, 'size': S, 'steps': args.steps, 'warmup': args.warmup,
        'threads': torch.get_num_threads(), 'ompWaitPolicy': os.environ['OMP_WAIT_POLICY'], 'torch': torch.__version__, 'params': params,
        'msPerStep': ms, 'imagesPerSec': B * 1e3 / ms, 'stepsMs': steps_ms, 'warmupMs': warmup_ms, 'losses': losses,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', choices=['vit', 'pvt'], required=True)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--size', type=int, default=None, help='224 for vit, 352 for pvt')
    ap.add_argument('--steps', type=int, default=2)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    if args.size is None:
        args.size = 224 if args.model == 'vit' else 352
    if args.model == 'vit' and args.size % 14:
        ap.error('--size must be a multiple of 14 for vit')
    if args.model == 'pvt' and args.size % 32:
        ap.error('--size must be a multiple of 32 for pvt')
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        ap.error('--batch and --steps must be >= 1, --warmup >= 0')
    torch.set_num_threads(args.threads)
    try:
        out = run(args)
    except Exception as e:  # one JSON line either way, so the spawning bench can report it
        print(json.dumps({'error': f'{type(e).__name__}: {e}'}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
