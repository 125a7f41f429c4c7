"""Reference layers shared by the golden generators (float64 PyTorch re-implementations).

LayerNorm2d: segment_anything/modeling/common.py (channel-wise LayerNorm over NCHW), used by the
SAM reference (sam_ref.py) and the vision-layer cases (gen_nn_vision.py).
SwiGLU: timm's SwiGLU with sub-LN (fc1_g, fc1_x, LayerNorm(hidden), fc2), as EVA-02-B/L and the
ToCo trunk use it (gen_eva02.py, gen_toco.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.Module):
    """segment_anything/modeling/common.py::LayerNorm2d."""

    def __init__(self, num_channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class SwiGLU(nn.Module):
    """timm SwiGLU with the sub-LN before fc2 (EVA-02 scale_mlp)."""

    def __init__(self, dim, hidden, eps=1e-6):
        super().__init__()
        self.fc1_g = nn.Linear(dim, hidden)
        self.fc1_x = nn.Linear(dim, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.norm(F.silu(self.fc1_g(x)) * self.fc1_x(x)))
