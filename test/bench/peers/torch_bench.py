"""Peer benchmark: median wall time of one training step in PyTorch (CPU, float32), for comparison
with the engine's benches. Prints one JSON line on stdout.

  /usr/bin/python3 test/bench/peers/torch_bench.py --model vit [--batch 8] [--size 224] [--steps 2] [--warmup 1]
  /usr/bin/python3 test/bench/peers/torch_bench.py --model pvt [--batch 8] [--size 352] [--steps 2] [--warmup 1]
With --serve it follows the step protocol of README.md instead: warm-up, a ready line, then one
timed step per `step` line on stdin, so a bench can alternate it with other engines.

Models (written from recipes/SPEC.md, no timm):
- vit: EVA-02 Ti (§1.2; timm `eva.py` eva02_tiny_patch14_224, BAAI EVA-02 `modeling_finetune.py`,
  `rope.py`): patch 14 conv, cls + learned pos_embed, 12 pre-LN blocks (LN eps 1e-6, no layer
  scale), fused qkv with q/v bias (k bias a zero buffer), 3 heads of 64, 2D RoPE on the patch
  tokens of q and k, packed SwiGLU 192 -> 2*512 -> 192, mean over patch tokens -> LN ->
  Linear(192, 10). Cross-entropy, SGD lr 1e-3.
- pvt: Polyp-PVT on PVTv2-b2 (§2.5), from test/golden/polyp_pvt_ref.py (the re-implementation the
  parity fixture is made with; no drop path): PVTv2-b2 (dims 64/128/320/512, depths 3/4/6/3, SRA,
  depthwise-conv FFN), CIM, translayers, CFM, SAM (graph reasoning) module, two 1-channel heads
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

# Polyp-PVT is the parity-checked re-implementation the golden fixture is made with.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'golden'))
from polyp_pvt_ref import PolypPVT, polyp_pvt_config, structure_loss  # noqa: E402


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
        model = PolypPVT(polyp_pvt_config('b2'))
        x = torch.rand(B, 3, S, S)
        blobs = F.interpolate(torch.randn(B, 1, S // 32, S // 32), size=(S, S), mode='bilinear', align_corners=False)
        y = (blobs > 0.5).float()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)

        def loss_fn():
            p1, p2 = model(x)
            return structure_loss(p1, y, 'mean_bce') + structure_loss(p2, y, 'mean_bce')
        clip = 0.5
    model.train()
    params = sum(p.numel() for p in model.parameters())

    losses = []
    cpu_times = [] if args.serve else None

    def step():
        if cpu_times is not None:
            c0 = time.process_time()
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
        ms = (time.perf_counter() - t0) * 1e3
        if cpu_times is not None:
            cpu_times.append((time.process_time() - c0) * 1e3)
        return ms

    tw = time.perf_counter()
    for _ in range(args.warmup):
        step()
    warmup_ms = (time.perf_counter() - tw) * 1e3
    meta = {
        'peer': 'torch', 'model': 'eva02-ti' if args.model == 'vit' else 'polyp-pvt-b2', 'batch': B, 'size': S,
        'threads': torch.get_num_threads(), 'ompWaitPolicy': os.environ['OMP_WAIT_POLICY'],
        'torch': torch.__version__, 'params': params,
    }
    if args.serve:
        serve(step, losses, cpu_times, {**meta, 'warmupMs': warmup_ms})
        return None
    steps_ms = [step() for _ in range(args.steps)]
    ms = statistics.median(steps_ms)
    return {
        **meta, 'steps': args.steps, 'warmup': args.warmup,
        'msPerStep': ms, 'imagesPerSec': B * 1e3 / ms, 'stepsMs': steps_ms, 'warmupMs': warmup_ms, 'losses': losses,
    }


def serve(step, losses, cpu_times, ready):
    """The step protocol: a ready line, then one timed step per `step` line on stdin."""
    print(json.dumps({'ready': True, **ready}), flush=True)
    for line in sys.stdin:
        if line.strip() != 'step':
            break
        ms = step()
        print(json.dumps({'ms': ms, 'cpuMs': cpu_times[-1], 'loss': losses[-1]}), flush=True)
    print(json.dumps({'done': True}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', choices=['vit', 'pvt'], required=True)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--size', type=int, default=None, help='224 for vit, 352 for pvt')
    ap.add_argument('--steps', type=int, default=2)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--serve', action='store_true', help='step protocol on stdin/stdout (README.md)')
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
        print(json.dumps({'error': f'{type(e).__name__}: {e}'}), flush=True)
        sys.exit(1)
    if out is not None:
        print(json.dumps(out))


if __name__ == '__main__':
    main()
