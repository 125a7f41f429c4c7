"""Golden trajectories for the optimizers and values of the lr schedules.

Each optimizer case: four parameters in two groups with different lr and weight decay, five steps
with gradients given per step (one parameter has no gradient at step 2: PyTorch skips it, its
state and step count included), and the parameters after the last step. SGD, Adam and AdamW are
torch.optim's (float64); AdaBelief is written here from the published algorithm (Zhuang et al.
2020, arXiv 2010.07468, as adabelief-pytorch 0.2.0 implements it: eps added to s_t in place,
rectify off). Schedules: torch.optim.lr_scheduler where torch has the schedule, and ToCo's
PolyWarmupAdamW lr rule re-stated for the part past max_iter."""
import math
import torch
from common import rand, write, _enc

SHAPES = [(7, 5), (7,), (3, 33), (1,)]
GROUPS = [{"params": [0, 1], "lr": 0.05, "weight_decay": 0.1}, {"params": [2, 3], "lr": 0.02, "weight_decay": 0.01}]
STEPS = 5
NO_GRAD = (1, 3)  # (step, param): parameter 3 has no gradient at step 1 (0-based)


def grads_at(step):
    return [None if (step, i) == NO_GRAD else rand(*s, seed=100 + 10 * step + i) for i, s in enumerate(SHAPES)]


def adabelief_step(group, p, state, decouple, fixed_decay):
    """One AdaBelief update of parameter p (rectify=False, amsgrad=False)."""
    lr, wd, (b1, b2), eps = group["lr"], group["weight_decay"], group["betas"], group["eps"]
    g = p.grad.clone()
    if decouple:
        p.data.mul_(1.0 - (wd if fixed_decay else lr * wd))
    elif wd != 0:
        g = g + wd * p.data
    if not state:
        state.update(step=0, m=torch.zeros_like(p), s=torch.zeros_like(p))
    state["step"] += 1
    bc1, bc2 = 1 - b1 ** state["step"], 1 - b2 ** state["step"]
    state["m"].mul_(b1).add_(g, alpha=1 - b1)
    r = g - state["m"]
    state["s"].mul_(b2).addcmul_(r, r, value=1 - b2).add_(eps)
    denom = state["s"].sqrt() / math.sqrt(bc2) + eps
    p.data.addcdiv_(state["m"], denom, value=-lr / bc1)


def run(name, make, options):
    params = [rand(*s, seed=10 + i).requires_grad_(True) for i, s in enumerate(SHAPES)]
    start = [_enc(p) for p in params]
    groups = [{"params": [params[i] for i in g["params"]], "lr": g["lr"], "weight_decay": g["weight_decay"]} for g in GROUPS]
    step = make(groups)
    grads = []
    for t in range(STEPS):
        gs = grads_at(t)
        for p, g in zip(params, gs):
            p.grad = None if g is None else g.clone()
        step()
        grads.append([None if g is None else _enc(g) for g in gs])
    return {"name": name, "options": options, "groups": GROUPS, "start": start, "grads": grads, "final": [_enc(p) for p in params]}


def torch_opt(cls, **kw):
    def make(groups):
        return cls(groups, **kw).step
    return make


def adabelief(decouple, fixed_decay=False, betas=(0.9, 0.999), eps=1e-16):
    def make(groups):
        states = {}
        for g in groups:
            g.update(betas=betas, eps=eps)

        def step():
            with torch.no_grad():
                for g in groups:
                    for p in g["params"]:
                        if p.grad is not None:
                            adabelief_step(g, p, states.setdefault(id(p), {}), decouple, fixed_decay)
        return step
    return make


cases = [
    run("sgd", torch_opt(torch.optim.SGD, lr=0.1), {}),
    run("sgd_momentum", torch_opt(torch.optim.SGD, lr=0.1, momentum=0.9, dampening=0.1), {"momentum": 0.9, "dampening": 0.1}),
    run("sgd_nesterov", torch_opt(torch.optim.SGD, lr=0.1, momentum=0.8, nesterov=True), {"momentum": 0.8, "nesterov": True}),
    run("adam", torch_opt(torch.optim.Adam, lr=0.1, betas=(0.9, 0.99), eps=1e-8), {"betas": [0.9, 0.99], "eps": 1e-8}),
    run("adamw", torch_opt(torch.optim.AdamW, lr=0.1, betas=(0.8, 0.999), eps=1e-6), {"betas": [0.8, 0.999], "eps": 1e-6}),
    run("adabelief", adabelief(True), {"betas": [0.9, 0.999], "eps": 1e-16, "weightDecouple": True}),
    run("adabelief_fixed_decay", adabelief(True, fixed_decay=True), {"betas": [0.9, 0.999], "eps": 1e-16, "weightDecouple": True, "fixedDecay": True}),
    run("adabelief_l2", adabelief(False, eps=1e-8), {"betas": [0.9, 0.999], "eps": 1e-8, "weightDecouple": False}),
]


def lrs(make_sched, n, lr=1.0):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_sched(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


S = torch.optim.lr_scheduler
# Cosine with warm-up: warm-up from LinearLR, the cosine part from CosineAnnealingLR started at
# the end of the warm-up.
base, warm, warm_lr, total, min_lr = 0.1, 5, 0.001, 25, 0.002
cosine = lrs(lambda o: S.LinearLR(o, start_factor=warm_lr / base, total_iters=warm), warm, lr=base)
cosine += lrs(lambda o: S.CosineAnnealingLR(o, T_max=total - warm, eta_min=min_lr), total - warm + 4, lr=base)[: total - warm + 1]
cosine += [min_lr] * 3
# Poly with warm-up (ToCo): warm-up from LinearLR(start 1e-6), decay from PolynomialLR.
pw, pmax, ratio, power = 10, 40, 1e-6, 0.9
poly = lrs(lambda o: S.LinearLR(o, start_factor=ratio, total_iters=pw), pw)
poly += lrs(lambda o: S.PolynomialLR(o, total_iters=pmax, power=power), pmax)[pw:]
# ToCo keeps the last lr past max_iter (its step() stops updating the lr).
poly += [poly[-1]] * 3
step_lr = lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.5), 10)
lambda_lr = lrs(lambda o: S.LambdaLR(o, lambda e: 0.95 ** (e / 2)), 10)

schedules = {
    "name": "schedules",
    "cosine": {"options": {"baseLr": base, "totalSteps": total, "warmupSteps": warm, "warmupLr": warm_lr, "minLr": min_lr}, "lr": cosine},
    "poly": {"options": {"warmupSteps": pw, "maxSteps": pmax, "warmupRatio": ratio, "power": power}, "factor": poly},
    "step": {"options": {"stepSize": 3, "gamma": 0.5}, "factor": step_lr},
    "lambda": {"factor": lambda_lr},
}
write("optim", cases + [schedules])
