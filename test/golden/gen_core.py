"""Golden cases for the core ops written with the engine's first commit: broadcasting binary
arithmetic, reductions and matmul (batched, broadcast, transposed) on awkward shapes."""
import torch
from common import case, rand, write

cases = [
    case("add_broadcast", lambda a, b: a + b, [rand(7, 1, 33, seed=1), rand(5, 1, seed=2)]),
    case("mul_broadcast", lambda a, b: a * b, [rand(2, 3, 65, seed=3), rand(65, seed=4)]),
    case("div", lambda a, b: a / b, [rand(33, seed=5), rand(33, seed=6, low=0.5, high=2)]),
    case("sum_axes", lambda a: a.sum(dim=(0, 2)), [rand(3, 7, 5, seed=7)]),
    case("mean_keepdim", lambda a: a.mean(dim=1, keepdim=True), [rand(4, 65, seed=8)]),
    case("max_axis", lambda a: a.amax(dim=-1), [rand(7, 33, seed=9)]),
    case("matmul_batched_broadcast", lambda a, b: a @ b, [rand(2, 1, 7, 33, seed=10), rand(3, 33, 5, seed=11)]),
    case("matmul_vec", lambda a, b: a @ b, [rand(65, seed=12), rand(65, 7, seed=13)]),
    case("matmul_transA", lambda a, b: a.transpose(-1, -2) @ b, [rand(33, 7, seed=14), rand(33, 1, seed=15)]),
    case("matmul_transB", lambda a, b: a @ b.transpose(-1, -2), [rand(4, 1, 9, seed=16), rand(4, 5, 9, seed=17)]),
    case("matmul_transA_transB", lambda a, b: a.transpose(-1, -2) @ b.transpose(-1, -2), [rand(2, 33, 7, seed=18), rand(5, 33, seed=19)]),
    # Zero-spread and size-1 reductions (ties share the gradient of max, as amax).
    case("sum_size1_axis", lambda a: a.sum(dim=1), [rand(4, 1, 5, seed=20)]),
    case("mean_size1_axis", lambda a: a.mean(dim=1, keepdim=True), [rand(4, 1, seed=21)]),
    case("max_constant_rows", lambda a: a.amax(dim=-1), [rand(3, 1, seed=22).repeat(1, 5)]),
    case("mean_constant_rows", lambda a: a.mean(dim=-1), [rand(3, 1, seed=23).repeat(1, 5)]),
]
write("core", cases)
