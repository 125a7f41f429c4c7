"""Golden cases for the fused normalisation / softmax / loss ops and argmax/argmin: softmax and
log-softmax (rows of 1, 7, 33, 65, 257, 1000, any axis, large values), layer norm (1- and 2-dim
normalized shapes, with and without affine), cross-entropy (ignore_index, label smoothing, class
weights, [N, C, H, W] logits, probability targets), BCE (with logits, pos_weight), MSE, L1,
cosine similarity (broadcasting, norms below eps). A case's name is `<op>/<variant>`; its args
are the PyTorch keyword arguments (class weights as lists)."""
import torch
import torch.nn.functional as F
from common import case, rand, write


def qrand(*shape, seed=0, low=-1.0, high=1.0):
    """rand() rounded to multiples of 1/64: exact in float32 and short in the JSON (big rows)."""
    return torch.round(rand(*shape, seed=seed, low=low, high=high) * 64) / 64


def shorten(record):
    """Shortens the floats to about half the characters of Python's repr: inputs and cotangents
    with 9 significant digits (still exactly their float32 values: 9 digits identify a float32),
    expected outputs and gradients with 8 (5e-9 relative, far below any tolerance)."""
    for key, digits in (("inputs", 9), ("cotangents", 9), ("outputs", 8), ("grads", 8)):
        for e in record.get(key) or []:
            if e is not None and e["dtype"] == "f32":
                e["data"] = [float("%.*g" % (digits, v)) for v in e["data"]]
    return record


def softmax(x, dim):
    return torch.softmax(x, dim)


def log_softmax(x, dim):
    return torch.log_softmax(x, dim)


def layer_norm(x, *wb, normalized_shape, eps=1e-5, affine="both"):
    w = wb[0] if affine in ("both", "weight") else None
    b = wb[-1] if affine in ("both", "bias") else None
    return F.layer_norm(x, normalized_shape, w, b, eps)


def cross_entropy(x, t, weight=None, **kw):
    return F.cross_entropy(x, t, weight=None if weight is None else torch.tensor(weight), **kw)


def targets(n, c, seed, ignore=(), ignore_index=-100):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, c, (n,), generator=g)
    for i in ignore:
        t[i] = ignore_index
    return t


def probs(*shape, seed):
    return torch.softmax(rand(*shape, seed=seed, low=-2, high=2), 1).to(torch.float32).to(torch.float64)


def bce_logits(x, y, pos_weight=None, weight=None, reduction="mean"):
    pw = None if pos_weight is None else torch.tensor(pos_weight)
    w = None if weight is None else torch.tensor(weight)
    return F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction=reduction)


def bce(p, y, weight=None, reduction="mean"):
    return F.binary_cross_entropy(p, y, weight=None if weight is None else torch.tensor(weight), reduction=reduction)


def bce_target_const(p, target, reduction="mean"):
    return F.binary_cross_entropy(p, torch.tensor(target), reduction=reduction)


def ties(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-3, 4, shape, generator=g).to(torch.float64)


cases = []
# softmax / log-softmax: row lengths 1..1000, every axis of a 3-d tensor, values far from 0.
for n, shape in [("len1", (4, 1)), ("len7", (5, 7)), ("len33", (3, 33)), ("len65", (2, 65)), ("len257", (1, 257))]:
    cases.append(case(f"softmax/{n}", softmax, [rand(*shape, seed=len(cases), low=-3, high=3)], {"dim": -1}))
cases.append(case("softmax/len1000", softmax, [qrand(1, 1000, seed=90, low=-4, high=4)], {"dim": -1}))
for dim in (0, 1, -1):
    cases.append(case(f"softmax/3d_dim{dim}", softmax, [rand(3, 4, 5, seed=10 + dim)], {"dim": dim}))
cases.append(case("softmax/large_values", softmax, [rand(3, 33, seed=20, low=500, high=600)], {"dim": 1}))
for n, shape, dim in [("len1", (3, 1), -1), ("len7", (5, 7), -1), ("len65", (2, 65), 1),
                      ("3d_dim0", (3, 4, 5), 0), ("3d_dim1", (3, 4, 5), 1), ("large_values", (2, 7, 3), 1)]:
    lo, hi = (-1000, -900) if n == "large_values" else (-3, 3)
    cases.append(case(f"log_softmax/{n}", log_softmax, [rand(*shape, seed=30 + len(cases), low=lo, high=hi)], {"dim": dim}))

# layer norm: 1- and 2-dim normalized shapes, affine on/off, weight only, rows of length 1.
ln = [
    ("affine_len7", (5, 7), [7], "both", 1e-5),
    ("plain_len33", (2, 2, 33), [33], "none", 1e-5),
    ("weight_only_len65", (2, 65), [65], "weight", 1e-5),
    ("affine_2d", (3, 4, 5), [4, 5], "both", 1e-5),
    ("plain_2d", (2, 3, 7), [3, 7], "none", 1e-6),
    ("affine_len257", (2, 257), [257], "both", 1e-5),
    ("affine_len1", (6, 1), [1], "both", 1e-5),
]
for n, shape, ns, affine, eps in ln:
    s = 40 + len(cases)
    ins = [rand(*shape, seed=s, low=-2, high=3)]
    if affine in ("both", "weight"):
        ins.append(rand(*ns, seed=s + 1, low=0.5, high=1.5))
    if affine == "both":
        ins.append(rand(*ns, seed=s + 2))
    cases.append(case(f"layer_norm/{n}", layer_norm, ins, {"normalized_shape": ns, "eps": eps, "affine": affine}))

# cross-entropy with class-index targets.
w7 = [0.5, 1.0, 2.0, 0.25, 1.5, 1.0, 3.0]
ce = [
    ("basic", rand(7, 5, seed=60, low=-3, high=3), targets(7, 5, 61), {}),
    ("ignore_rows", rand(6, 7, seed=62, low=-3, high=3), targets(6, 7, 63, ignore=(1, 4)), {}),
    ("ignore_index_2", rand(8, 4, seed=64, low=-3, high=3), targets(8, 4, 65), {"ignore_index": 2}),
    ("smoothing", rand(5, 33, seed=66, low=-3, high=3), targets(5, 33, 67), {"label_smoothing": 0.1}),
    ("weights_ignore", rand(6, 7, seed=68, low=-3, high=3), targets(6, 7, 69, ignore=(2,)), {"weight": w7}),
    ("weights_smoothing_ignore", rand(6, 7, seed=70, low=-3, high=3), targets(6, 7, 71, ignore=(0, 5)), {"weight": w7, "label_smoothing": 0.1}),
    ("sum", rand(5, 7, seed=72, low=-3, high=3), targets(5, 7, 73, ignore=(3,)), {"reduction": "sum", "label_smoothing": 0.1}),
    ("none", rand(5, 7, seed=74, low=-3, high=3), targets(5, 7, 75, ignore=(1,)), {"reduction": "none", "weight": w7, "label_smoothing": 0.1}),
    ("classes1000", qrand(1, 1000, seed=76, low=-4, high=4), targets(1, 1000, 77), {"label_smoothing": 0.1}),
    ("classes1", rand(4, 1, seed=78), targets(4, 1, 79), {}),
    ("single_sample", rand(65, seed=80, low=-3, high=3), torch.tensor(17), {"label_smoothing": 0.1}),
    ("large_logits", rand(4, 7, seed=84, low=400, high=410), targets(4, 7, 85), {"weight": w7, "label_smoothing": 0.1}),
]
t4 = targets(2 * 3 * 4, 5, 82, ignore=(0, 7, 13)).reshape(2, 3, 4)
ce.append(("4d", rand(2, 5, 3, 4, seed=81, low=-3, high=3), t4, {"weight": w7[:5], "label_smoothing": 0.1}))
ce.append(("4d_none", rand(2, 5, 3, 4, seed=83, low=-3, high=3), t4, {"reduction": "none"}))
for n, x, t, kw in ce:
    cases.append(case(f"cross_entropy/{n}", cross_entropy, [x, t], kw))

# cross-entropy with class-probability targets (the target gets a gradient too).
cp = [
    ("probs", (4, 7), {}),
    ("probs_weights_smoothing", (4, 7), {"weight": w7, "label_smoothing": 0.1}),
    ("probs_4d", (2, 3, 2, 2), {"label_smoothing": 0.1}),
    ("probs_sum", (3, 33), {"reduction": "sum"}),
    ("probs_none", (3, 5, 2), {"reduction": "none", "weight": w7[:5]}),
    ("probs_large_logits", (3, 7), {"weight": w7, "label_smoothing": 0.1}),
]
for i, (n, shape, kw) in enumerate(cp):
    lo, hi = (-410, -400) if "large" in n else (-3, 3)
    cases.append(case(f"cross_entropy/{n}", cross_entropy, [rand(*shape, seed=90 + i, low=lo, high=hi), probs(*shape, seed=96 + i)], kw))

# BCE with logits: large |x| (stability), pos_weight, weight, reductions.
cases.append(case("bce_with_logits/basic", bce_logits, [rand(4, 7, seed=100, low=-30, high=30), rand(4, 7, seed=101, low=0, high=1)]))
cases.append(case("bce_with_logits/pos_weight", bce_logits, [rand(4, 7, seed=102, low=-5, high=5), rand(4, 7, seed=103, low=0, high=1)],
                  {"pos_weight": [0.5, 1, 2, 3, 0.25, 1, 4]}))
cases.append(case("bce_with_logits/pos_weight_weight_sum", bce_logits, [rand(3, 5, seed=104, low=-5, high=5), rand(3, 5, seed=105, low=0, high=1)],
                  {"pos_weight": [2, 1, 0.5, 3, 1], "weight": [1, 0.5, 2, 1, 0.25], "reduction": "sum"}))
cases.append(case("bce_with_logits/none", bce_logits, [rand(33, seed=106, low=-5, high=5), rand(33, seed=107, low=0, high=1)], {"reduction": "none"}))
# BCE on probabilities.
cases.append(case("bce/basic", bce, [rand(4, 7, seed=110, low=0.02, high=0.98), rand(4, 7, seed=111, low=0, high=1)]))
cases.append(case("bce/weight_none", bce, [rand(3, 5, seed=112, low=0.02, high=0.98), rand(3, 5, seed=113, low=0, high=1)],
                  {"weight": [1, 0.5, 2, 1, 0.25], "reduction": "none"}))
cases.append(case("bce/clamped_logs", bce_target_const, [torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0, 1e-30])],
                  {"target": [0.0, 1.0, 0.3, 0.25, 0.5, 1.0], "reduction": "none"}))
# MSE / L1.
for red in ("mean", "sum", "none"):
    cases.append(case(f"mse/{red}", lambda a, b, reduction: F.mse_loss(a, b, reduction=reduction), [rand(3, 7, seed=120), rand(3, 7, seed=121)], {"reduction": red}))
    cases.append(case(f"l1/{red}", lambda a, b, reduction: F.l1_loss(a, b, reduction=reduction), [rand(33, seed=122), rand(33, seed=123)], {"reduction": red}))
# cosine similarity.
cs = [
    ("basic", rand(4, 7, seed=130), rand(4, 7, seed=131), {"dim": -1}),
    ("broadcast", rand(3, 1, 33, seed=132), rand(5, 33, seed=133), {"dim": -1}),
    ("dim0", rand(7, 3, seed=134), rand(7, 3, seed=135), {"dim": 0}),
    ("broadcast_reduced_dim", rand(4, 1, seed=136), rand(4, 6, seed=137), {"dim": 1}),
    ("below_eps", torch.tensor([[0.01, 0.02], [0.0, 0.0], [0.3, -0.4]]), rand(3, 2, seed=138), {"dim": 1, "eps": 0.05}),
]
for n, a, b, kw in cs:
    cases.append(case(f"cosine_similarity/{n}", lambda a, b, dim, eps=1e-8: F.cosine_similarity(a, b, dim, eps), [a, b], kw))
# argmax / argmin (ties resolve to the first index).
for f in ("argmax", "argmin"):
    op = getattr(torch, f)
    cases.append(case(f"{f}/rows", lambda x, dim, keepdim: op(x, dim, keepdim), [ties(5, 70, seed=140)], {"dim": 1, "keepdim": False}, grad=False))
    cases.append(case(f"{f}/dim0_keepdim", lambda x, dim, keepdim: op(x, dim, keepdim), [ties(7, 3, 4, seed=141)], {"dim": 0, "keepdim": True}, grad=False))
    cases.append(case(f"{f}/len1", lambda x, dim, keepdim: op(x, dim, keepdim), [rand(3, 1, seed=142)], {"dim": -1, "keepdim": False}, grad=False))
    cases.append(case(f"{f}/len257", lambda x, dim, keepdim: op(x, dim, keepdim), [qrand(2, 257, seed=143)], {"dim": 1, "keepdim": False}, grad=False))
write("nn_ops", [shorten(c) for c in cases])
