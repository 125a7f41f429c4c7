"""Golden fixtures: PyTorch (float64) is the oracle. Each generator module builds a list of
cases with `case(...)` and writes them with `write(family, cases)` (or any JSON-like tree with
`write_fixture(family, tree)`); CI only reads the files and never needs torch. Run all generators
with `npm run golden` (Debian's python3-torch).

A fixture is two files, <family>.json (a pretty-printed index) and <family>.safetensors (the
numbers): see fixture_io.py.

A case records the inputs, the op's keyword arguments, the outputs, a seeded random cotangent
per output, and the gradient of sum(output * cotangent) with respect to every float input.
Values are rounded to float32 so the files stay small."""
import os

import torch

from fixture_io import write_fixture

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def _f32(t):
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def _enc(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.bool, torch.uint8):
        return {"shape": list(t.shape), "dtype": "i32", "data": [int(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "f32", "data": _f32(t)}


def rand(*shape, seed=0, low=-1.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g) * (high - low) + low
    # Round to float32 first so the engine sees exactly the oracle's inputs.
    return x.to(torch.float32).to(torch.float64)


def case(name, fn, inputs, args=None, grad=True, seed=1):
    """fn(*inputs, **args) -> tensor or tuple of tensors. Float inputs get gradients if grad."""
    args = args or {}
    ins = []
    for t in inputs:
        t = t.clone()
        if grad and t.is_floating_point():
            t.requires_grad_(True)
        ins.append(t)
    out = fn(*ins, **args)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    record = {"name": name, "args": args, "inputs": [_enc(t) for t in ins], "outputs": [_enc(o) for o in outs]}
    if grad and any(t.requires_grad for t in ins):
        g = torch.Generator().manual_seed(seed)
        cots = [torch.rand(o.shape, generator=g).to(torch.float32).to(torch.float64) * 2 - 1 if o.is_floating_point() else None for o in outs]
        total = sum((o * c).sum() for o, c in zip(outs, cots) if c is not None and o.requires_grad)
        grads = torch.autograd.grad(total, [t for t in ins if t.requires_grad], allow_unused=True)
        it = iter(grads)
        record["cotangents"] = [_enc(c) if c is not None else None for c in cots]
        grads = [next(it) if t.requires_grad else None for t in ins]
        # An input the output does not depend on (e.g. a where() condition) has no gradient.
        record["grads"] = [_enc(g) if g is not None else None for g in grads]
        record["grads"] = [gr if gr is None or gr["data"] else None for gr in record["grads"]]
    return record


def write(family, cases):
    write_fixture(family, {"family": family, "generator": f"test/golden/gen_{family}.py", "cases": cases})
    print(f"wrote {family}: {len(cases)} cases")
