"""Golden cases for the fused SwiGLU op, silu(a) * g (engine/ops/swiglu.ts): the packed form
(x [..., 2H] holding [a | g], timm GluMlp with gate_last=False) and the two-tensor form (timm
SwiGLU's fc1_g, fc1_x), on rows and widths that are not multiples of 4 (the scalar kernel) and
that are (the vec4 kernel). Inputs span [-6, 6] so both tails of the sigmoid are exercised."""
import torch.nn.functional as F
from common import case, rand, write


def swiglu_packed(x):
    a, g = x.chunk(2, dim=-1)
    return F.silu(a) * g


def swiglu(a, g):
    return F.silu(a) * g


cases = []
for i, shape in enumerate([[1, 2], [7, 6], [2, 5, 16], [33, 24], [3, 130]]):
    cases.append(case(f"packed/{'x'.join(map(str, shape))}", swiglu_packed, [rand(*shape, seed=10 + i, low=-6, high=6)], seed=20 + i))
for i, shape in enumerate([[1], [7, 3], [2, 3, 8], [33, 12], [4, 65]]):
    a = rand(*shape, seed=40 + i, low=-6, high=6)
    g = rand(*shape, seed=60 + i, low=-2, high=2)
    cases.append(case(f"split/{'x'.join(map(str, shape))}", swiglu, [a, g], seed=80 + i))
write("swiglu", cases)
