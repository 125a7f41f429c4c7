"""Golden cases for the vision / transformer nn modules (engine/nn/vision.ts, attention.ts,
mlp.ts; test/nn/vision.test.ts), from the real torch.nn modules in float64: Conv2d, Conv1d,
ConvTranspose2d, BatchNorm1d/2d, GroupNorm, MultiheadAttention. timm and segment_anything are
not installed here, so three small modules are written out below with the same structure and
parameter names: timm's Mlp (timm/layers/mlp.py), SAM's LayerNorm2d
(segment_anything/modeling/common.py) and SAM's Attention with internal downsample
(segment_anything/modeling/transformer.py; kv_in_dim as in SAM 2's version).

Each module case records: the state_dict keys, shapes and dtypes as PyTorch lists them; the
state it is loaded with (parameters overwritten with values quantised to multiples of 1/256, so
both sides hold them exactly; stored as integers and a scale); the mode; the inputs; the output;
a cotangent; the gradients of sum(output * cotangent) for every float input and every parameter
(by key); the buffers after the forward (BatchNorm's running statistics); for BatchNorm in train
mode also the eval-mode output after that step.

`init` records, per module built with PyTorch's default initialisation, each state entry's
size, min, max, mean and (biased) std, and the bound the default init draws from (asserted
here against torch's own draws)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from common import write
from torch_layers import LayerNorm2d

torch.set_default_dtype(torch.float64)
SCALE = 256


def qrand(*shape, seed=0, low=-1.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g) * (high - low) + low
    return torch.round(x * SCALE) / SCALE


def exact(t):
    """Values that are multiples of 1/SCALE (or integers / booleans), as integers."""
    t = t.detach()
    if t.dtype in (torch.bool, torch.int64, torch.int32):
        return {"shape": list(t.shape), "dtype": "i32", "scale": 1, "q": [int(v) for v in t.reshape(-1).tolist()]}
    q = t * SCALE
    assert torch.equal(q, torch.round(q)), "not a multiple of 1/SCALE"
    return {"shape": list(t.shape), "dtype": "f32", "scale": 1 / SCALE, "q": [int(v) for v in q.reshape(-1).tolist()]}


def approx(t):
    t = t.detach()
    if t.dtype in (torch.bool, torch.int64, torch.int32):
        return exact(t)
    return {"shape": list(t.shape), "dtype": "f32", "data": [float("%.7g" % v) for v in t.reshape(-1).tolist()]}


def module_case(name, module, ctor, inputs, train=True, call=None, forward_args=None, seed=0, buffers=None):
    """`ctor`: what the engine's constructor takes ({"type": ..., "args": [...], "opts": {...}})."""
    call = call or (lambda m, *xs: m(*xs))
    for i, (_, p) in enumerate(module.named_parameters()):
        with torch.no_grad():
            p.copy_(qrand(*p.shape, seed=seed * 100 + i, low=-0.5, high=0.5))
    for k, v in (buffers or {}).items():
        with torch.no_grad():
            module.get_buffer(k).copy_(v)
    state = module.state_dict()
    rec = {
        "name": name, "ctor": ctor, "train": train, "forward_args": forward_args or {},
        "keys": [[k, list(v.shape), "i32" if not v.is_floating_point() else "f32"] for k, v in state.items()],
        "state": {k: exact(v) for k, v in state.items()},
    }
    module.train(train)
    ins = []
    for x in inputs:
        if x is not None and x.is_floating_point():
            x = x.clone().requires_grad_(True)
        ins.append(x)
    out = call(module, *ins)
    cot = qrand(*out.shape, seed=seed * 100 + 99)
    (out * cot).sum().backward()
    rec["inputs"] = [exact(x) if x is not None else None for x in ins]
    rec["output"] = approx(out)
    rec["cotangent"] = exact(cot)
    rec["input_grads"] = [approx(x.grad) if x is not None and x.is_floating_point() else None for x in ins]
    rec["param_grads"] = {k: approx(p.grad) for k, p in module.named_parameters()}
    rec["buffers_after"] = {k: approx(b) for k, b in module.named_buffers()}
    if train and isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.eval()
        with torch.no_grad():
            rec["eval_output"] = approx(call(module, *inputs))
    return rec


# ---- modules written out (not installed here) --------------------------------------------------

class Mlp(nn.Module):
    """timm/layers/mlp.py::Mlp."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, norm_layer=None, bias=True, drop=0.0, use_conv=False):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        bias = bias if isinstance(bias, tuple) else (bias, bias)
        drop = drop if isinstance(drop, tuple) else (drop, drop)
        linear = (lambda i, o, bias: nn.Conv2d(i, o, kernel_size=1, bias=bias)) if use_conv else nn.Linear
        self.fc1 = linear(in_features, hidden_features, bias=bias[0])
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop[0])
        self.norm = norm_layer(hidden_features) if norm_layer is not None else nn.Identity()
        self.fc2 = linear(hidden_features, out_features, bias=bias[1])
        self.drop2 = nn.Dropout(drop[1])

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class SamAttention(nn.Module):
    """segment_anything/modeling/transformer.py::Attention (batch-first q, k, v)."""

    def __init__(self, embedding_dim, num_heads, downsample_rate=1, kv_in_dim=None):
        super().__init__()
        kv_in_dim = kv_in_dim or embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        assert self.internal_dim % num_heads == 0
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def heads(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q, k, v):
        q, k, v = self.heads(self.q_proj(q)), self.heads(self.k_proj(k)), self.heads(self.v_proj(v))
        attn = torch.softmax(q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1]), dim=-1)
        out = (attn @ v).transpose(1, 2)
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


def mha_call(m, q, k, v, attn_mask=None, key_padding_mask=None):
    return m(q, k, v, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]


def ct(type_, *args, **opts):
    return {"type": type_, "args": list(args), "opts": opts}


def no_row_all_true(mask):
    mask[..., 0] = False
    return mask


torch.manual_seed(0)
g = torch.Generator().manual_seed(5)
kpm = torch.rand(2, 7, generator=g) < 0.4
kpm[:, 0] = False
kpm6 = torch.rand(2, 6, generator=g) < 0.4
kpm6[:, 2] = False
bool3d = no_row_all_true(torch.rand(4, 4, 6, generator=g) < 0.35)

cases = [
    # convolutions
    module_case("conv2d_s2_p1_groups2", nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), ct("Conv2d", 4, 6, 3, stride=2, padding=1, groups=2),
                [qrand(2, 4, 7, 9, seed=1)], seed=1),
    module_case("conv2d_rect_dilation2_nobias", nn.Conv2d(3, 4, (3, 2), padding=(2, 1), dilation=2, bias=False),
                ct("Conv2d", 3, 4, [3, 2], padding=[2, 1], dilation=2, bias=False), [qrand(1, 3, 9, 6, seed=2)], seed=2),
    module_case("conv2d_depthwise", nn.Conv2d(5, 5, 3, padding=1, groups=5), ct("Conv2d", 5, 5, 3, padding=1, groups=5),
                [qrand(1, 5, 7, 5, seed=3)], seed=3),
    module_case("conv1d_k3_s2_groups2", nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), ct("Conv1d", 4, 6, 3, stride=2, padding=1, groups=2),
                [qrand(2, 4, 9, seed=4)], seed=4),
    module_case("conv_transpose2d_k2s2", nn.ConvTranspose2d(4, 3, 2, stride=2), ct("ConvTranspose2d", 4, 3, 2, stride=2),
                [qrand(2, 4, 5, 7, seed=5)], seed=5),
    module_case("conv_transpose2d_k3s2_p1_op1_groups2", nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
                ct("ConvTranspose2d", 4, 6, 3, stride=2, padding=1, outputPadding=1, groups=2), [qrand(1, 4, 4, 5, seed=6)], seed=6),
    module_case("conv_transpose2d_output_size", nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, bias=False),
                ct("ConvTranspose2d", 2, 3, 3, stride=2, padding=1, bias=False), [qrand(1, 2, 5, 4, seed=7)],
                call=lambda m, x: m(x, output_size=[10, 8]), forward_args={"output_size": [10, 8]}, seed=7),
    # normalisation
    module_case("batchnorm2d_train", nn.BatchNorm2d(4, momentum=0.2), ct("BatchNorm2d", 4, momentum=0.2), [qrand(3, 4, 5, 3, seed=8)], seed=8,
                buffers={"running_mean": qrand(4, seed=81), "running_var": qrand(4, seed=82, low=0.5, high=2), "num_batches_tracked": torch.tensor(3)}),
    module_case("batchnorm2d_eval", nn.BatchNorm2d(4), ct("BatchNorm2d", 4), [qrand(2, 4, 3, 5, seed=9)], train=False, seed=9,
                buffers={"running_mean": qrand(4, seed=91), "running_var": qrand(4, seed=92, low=0.5, high=2)}),
    module_case("batchnorm2d_noaffine_train", nn.BatchNorm2d(3, eps=1e-3, affine=False), ct("BatchNorm2d", 3, eps=1e-3, affine=False),
                [qrand(2, 3, 3, 3, seed=10)], seed=10),
    module_case("batchnorm1d_train_nc", nn.BatchNorm1d(6), ct("BatchNorm1d", 6), [qrand(5, 6, seed=11)], seed=11),
    module_case("batchnorm1d_train_ncl", nn.BatchNorm1d(3, momentum=0.5), ct("BatchNorm1d", 3, momentum=0.5), [qrand(2, 3, 7, seed=12)], seed=12),
    module_case("batchnorm1d_eval", nn.BatchNorm1d(6), ct("BatchNorm1d", 6), [qrand(4, 6, seed=13)], train=False, seed=13,
                buffers={"running_mean": qrand(6, seed=131), "running_var": qrand(6, seed=132, low=0.5, high=2)}),
    module_case("groupnorm", nn.GroupNorm(3, 6), ct("GroupNorm", 3, 6), [qrand(2, 6, 5, 3, seed=14)], seed=14),
    module_case("groupnorm_noaffine", nn.GroupNorm(2, 4, eps=1e-3, affine=False), ct("GroupNorm", 2, 4, eps=1e-3, affine=False),
                [qrand(3, 4, 7, seed=15)], seed=15),
    module_case("layernorm2d", LayerNorm2d(5), ct("LayerNorm2d", 5), [qrand(2, 5, 3, 7, seed=16)], seed=16),
    # attention
    module_case("mha_self_batch_first", nn.MultiheadAttention(8, 2, batch_first=True), ct("MultiheadAttention", 8, 2, batchFirst=True),
                [qrand(2, 5, 8, seed=17)], call=lambda m, x: mha_call(m, x, x, x), seed=17),
    module_case("mha_self_seq_first_head_dim3", nn.MultiheadAttention(12, 4, dropout=0.25), ct("MultiheadAttention", 12, 4, dropout=0.25),
                [qrand(7, 1, 12, seed=18)], train=False, call=lambda m, x: mha_call(m, x, x, x), seed=18),
    module_case("mha_cross_float_mask_key_padding", nn.MultiheadAttention(8, 2), ct("MultiheadAttention", 8, 2),
                [qrand(3, 2, 8, seed=19), qrand(7, 2, 8, seed=20), qrand(7, 2, 8, seed=21), qrand(3, 7, seed=22, low=-2, high=0), kpm],
                call=mha_call, seed=19),
    module_case("mha_cross_bool_mask3d_nobias", nn.MultiheadAttention(8, 2, bias=False, batch_first=True),
                ct("MultiheadAttention", 8, 2, bias=False, batchFirst=True),
                [qrand(2, 4, 8, seed=23), qrand(2, 6, 8, seed=24), qrand(2, 6, 8, seed=25), bool3d], call=mha_call, seed=23),
    module_case("mha_kdim_vdim", nn.MultiheadAttention(8, 2, kdim=5, vdim=3), ct("MultiheadAttention", 8, 2, kdim=5, vdim=3),
                [qrand(3, 2, 8, seed=26), qrand(6, 2, 5, seed=27), qrand(6, 2, 3, seed=28), None, kpm6], call=mha_call, seed=26),
    module_case("mha_unbatched", nn.MultiheadAttention(6, 3), ct("MultiheadAttention", 6, 3), [qrand(4, 6, seed=29)],
                call=lambda m, x: mha_call(m, x, x, x), seed=29),
    module_case("sam_attention_downsample2", SamAttention(8, 2, downsample_rate=2),
                ct("MultiheadAttention", 8, 2, separate=True, downsampleRate=2, batchFirst=True),
                [qrand(2, 3, 8, seed=30), qrand(2, 7, 8, seed=31), qrand(2, 7, 8, seed=32)], seed=30),
    module_case("sam_attention_kv_in_dim", SamAttention(8, 1, kv_in_dim=6), ct("MultiheadAttention", 8, 1, separate=True, kdim=6, vdim=6, batchFirst=True),
                [qrand(2, 3, 8, seed=33), qrand(2, 5, 6, seed=34), qrand(2, 5, 6, seed=35)], seed=33),
    # MLP
    module_case("mlp_gelu", Mlp(6, 10, 5), ct("Mlp", 6, hiddenFeatures=10, outFeatures=5), [qrand(2, 3, 6, seed=36)], seed=36),
    module_case("mlp_gelu_tanh_norm_bias_true_false", Mlp(6, 8, act_layer=lambda: nn.GELU(approximate="tanh"), norm_layer=nn.LayerNorm, bias=(True, False)),
                ct("Mlp", 6, hiddenFeatures=8, act="gelu_tanh", norm="LayerNorm", bias=[True, False]), [qrand(4, 6, seed=37)], seed=37),
    module_case("mlp_conv", Mlp(4, 6, use_conv=True, act_layer=nn.ReLU), ct("Mlp", 4, hiddenFeatures=6, useConv=True, act="relu"),
                [qrand(1, 4, 3, 5, seed=38)], seed=38),
]


# ---- default initialisation ---------------------------------------------------------------------

def kaiming_a_sqrt5_bound(fan_in):
    # kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound sqrt(3) * gain / sqrt(fan_in).
    return math.sqrt(3) * math.sqrt(2 / (1 + 5)) / math.sqrt(fan_in)


def xavier_bound(fan_in, fan_out):
    return math.sqrt(6 / (fan_in + fan_out))


def init_case(name, module, ctor, bounds):
    torch.manual_seed(1234)
    module = module()
    entries = {}
    for k, v in module.state_dict().items():
        v = v.to(torch.float64)
        e = {"shape": list(v.shape), "min": v.min().item(), "max": v.max().item(), "mean": v.mean().item(), "std": v.std(unbiased=False).item()}
        if k in bounds:
            e["bound"] = bounds[k]
            assert v.abs().max().item() <= bounds[k], (name, k)
            assert v.numel() < 256 or v.abs().max().item() >= 0.9 * bounds[k], (name, k)
        else:
            assert e["min"] == e["max"], (name, k, "a random entry needs a bound")
        entries[k] = e
    return {"name": name, "ctor": ctor, "entries": entries}


kb = kaiming_a_sqrt5_bound
init = [
    init_case("Conv2d", lambda: nn.Conv2d(16, 32, 3), ct("Conv2d", 16, 32, 3), {"weight": kb(16 * 9), "bias": kb(16 * 9)}),
    init_case("Conv2d_depthwise", lambda: nn.Conv2d(32, 32, 3, groups=32), ct("Conv2d", 32, 32, 3, groups=32), {"weight": kb(9), "bias": kb(9)}),
    init_case("Conv1d", lambda: nn.Conv1d(8, 64, 3), ct("Conv1d", 8, 64, 3), {"weight": kb(24), "bias": kb(24)}),
    init_case("ConvTranspose2d_k2s2", lambda: nn.ConvTranspose2d(16, 32, 2, stride=2), ct("ConvTranspose2d", 16, 32, 2, stride=2),
              {"weight": kb(32 * 4), "bias": kb(32 * 4)}),
    init_case("ConvTranspose2d_groups4", lambda: nn.ConvTranspose2d(16, 32, 3, groups=4), ct("ConvTranspose2d", 16, 32, 3, groups=4),
              {"weight": kb(8 * 9), "bias": kb(8 * 9)}),
    init_case("BatchNorm2d", lambda: nn.BatchNorm2d(8), ct("BatchNorm2d", 8), {}),
    init_case("BatchNorm1d", lambda: nn.BatchNorm1d(8), ct("BatchNorm1d", 8), {}),
    init_case("GroupNorm", lambda: nn.GroupNorm(2, 8), ct("GroupNorm", 2, 8), {}),
    init_case("LayerNorm2d", lambda: LayerNorm2d(8), ct("LayerNorm2d", 8), {}),
    init_case("MultiheadAttention", lambda: nn.MultiheadAttention(32, 4), ct("MultiheadAttention", 32, 4),
              {"in_proj_weight": xavier_bound(32, 96), "out_proj.weight": kb(32)}),
    init_case("MultiheadAttention_kdim_vdim", lambda: nn.MultiheadAttention(32, 4, kdim=16, vdim=24), ct("MultiheadAttention", 32, 4, kdim=16, vdim=24),
              {"q_proj_weight": xavier_bound(32, 32), "k_proj_weight": xavier_bound(16, 32), "v_proj_weight": xavier_bound(24, 32), "out_proj.weight": kb(32)}),
    init_case("SamAttention_downsample2", lambda: SamAttention(32, 4, downsample_rate=2), ct("MultiheadAttention", 32, 4, separate=True, downsampleRate=2),
              {**{f"{p}_proj.{w}": kb(32) for p in "qkv" for w in ("weight", "bias")}, "out_proj.weight": kb(16), "out_proj.bias": kb(16)}),
    init_case("Mlp", lambda: Mlp(32, 64, 16), ct("Mlp", 32, hiddenFeatures=64, outFeatures=16),
              {"fc1.weight": kb(32), "fc1.bias": kb(32), "fc2.weight": kb(64), "fc2.bias": kb(64)}),
]

write("nn_vision", {"modules": cases, "init": init})
