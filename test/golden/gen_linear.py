"""Golden cases for linear (torch.nn.functional.linear, engine/ops/matmul.ts): x W^T + b with the
bias fused into the matmul's store, on shapes that leave remainders in every tile of the matmul
kernels (rows and features of 1, 7, 17, 33, 70), leading batch dims that are flattened into rows,
a 1-d input, and no bias."""
import torch.nn.functional as F
from common import case, rand, write


def linear(x, w, *b):
    return F.linear(x, w, b[0] if b else None)


cases = []
for i, (xs, out, bias) in enumerate(
    [([1, 1], 1, True), ([7, 5], 3, True), ([2, 3, 33], 17, True), ([70, 9], 33, True), ([6], 4, True), ([2, 7, 12], 33, False), ([3, 0, 8], 5, True)]
):
    inputs = [rand(*xs, seed=100 + i), rand(out, xs[-1], seed=200 + i)] + ([rand(out, seed=300 + i)] if bias else [])
    name = f"{'x'.join(map(str, xs))}->{out}{'' if bias else ' no bias'}"
    cases.append(case(name, linear, inputs, seed=400 + i))
write("linear", cases)
