"""Golden cases for the elementwise ops (unary, activations, binary with broadcasting, where,
clamp, pow) and var/std, on awkward shapes (1, 7, 33, 65, broadcasting)."""
import torch
import torch.nn.functional as F
from common import case, rand, write

A = lambda s=1: rand(7, 33, seed=s)
POS = lambda s=2: rand(65, seed=s, low=0.1, high=3.0)


def constant_rows(seed):
    """[4, 6] with rows 1 and 3 constant."""
    x = rand(4, 6, seed=seed)
    x[1] = x[1, 0]
    x[3] = x[3, 2]
    return x

cases = [
    case("neg", lambda x: -x, [A()]),
    case("exp", torch.exp, [A()]),
    case("log", torch.log, [POS()]),
    case("sqrt", torch.sqrt, [POS()]),
    case("rsqrt", torch.rsqrt, [POS()]),
    case("abs", torch.abs, [A(3)]),
    case("sin", torch.sin, [A(4)]),
    case("cos", torch.cos, [A(5)]),
    case("tanh", torch.tanh, [rand(1, 65, seed=6, low=-3, high=3)]),
    case("sigmoid", torch.sigmoid, [rand(33, seed=7, low=-6, high=6)]),
    case("relu", torch.relu, [A(8)]),
    case("softplus", F.softplus, [rand(65, seed=9, low=-25, high=25)]),
    case("silu", F.silu, [rand(7, 33, seed=10, low=-5, high=5)]),
    case("gelu", F.gelu, [rand(7, 33, seed=11, low=-4, high=4)]),
    case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [rand(7, 33, seed=12, low=-4, high=4)]),
    case("clamp", lambda x: torch.clamp(x, -0.3, 0.5), [A(13)]),
    case("pow_scalar", lambda x: x ** 3, [A(14)]),
    case("pow_scalar_frac", lambda x: x ** 0.5, [POS(15)]),
    case("pow_tensor", lambda a, b: a ** b, [rand(7, 1, seed=16, low=0.2, high=2), rand(33, seed=17, low=-1.5, high=1.5)]),
    case("sub_broadcast", lambda a, b: a - b, [rand(1, 7, seed=18), rand(33, 1, seed=19)]),
    case("maximum", torch.maximum, [rand(7, 33, seed=20), rand(33, seed=21)]),
    case("minimum", torch.minimum, [rand(7, 33, seed=22), rand(7, 1, seed=23)]),
    case("where", lambda c, a, b: torch.where(c > 0, a, b), [rand(7, 1, seed=24), rand(7, 33, seed=25), rand(33, seed=26)], grad=True),
    case("rsub_scalar", lambda x: 2.5 - x, [A(27)]),
    case("rdiv_scalar", lambda x: 2.0 / x, [POS(28)]),
    case("var", lambda x: x.var(dim=1, keepdim=True), [rand(7, 65, seed=29)]),
    case("std_all", lambda x: x.std(), [rand(33, seed=30)]),
    case("var_unbiased_false", lambda x: x.var(dim=(0, 2), unbiased=False), [rand(3, 7, 5, seed=31)]),
    case("min_axis", lambda x: x.amin(dim=0), [rand(33, 7, seed=32)]),
    # Zero spread (constant rows) and size-1 reduced axes: PyTorch's std gradient is 0 there.
    case("std_constant_rows", lambda x: x.std(dim=1), [constant_rows(seed=33)]),
    case("var_constant_rows", lambda x: x.var(dim=1, keepdim=True), [constant_rows(seed=34)]),
    case("std_all_constant", lambda x: x.std(), [torch.full((7,), 0.3)]),
    case("std_size1_axis_biased", lambda x: x.std(dim=1, unbiased=False), [rand(5, 1, seed=35)]),
    case("var_size1_axis_biased", lambda x: x.var(dim=1, unbiased=False), [rand(5, 1, seed=36)]),
    case("min_constant_rows", lambda x: x.amin(dim=0), [rand(1, 4, seed=37).repeat(6, 1)]),
]
write("elementwise", cases)
