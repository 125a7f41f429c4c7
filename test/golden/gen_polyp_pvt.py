"""Golden state for the Polyp-PVT parity test (test/models/polyp-pvt.test.ts): a float64 PyTorch
re-implementation of PVTv2 + the Polyp-PVT head, with module names equal to the reference's
state_dict keys (DengPingFan/Polyp-PVT lib/pvtv2.py and lib/pvt.py; timm and Polyp-PVT are not
installed here, so the model is written out below). Train mode throughout (BatchNorm uses batch
statistics and updates its running ones); drop path 0 so the forward is deterministic.

Config: smaller than Polyp-PVT-mu (spec section 4), whose 484k parameters and their gradients
would not fit a JSON fixture: PVTv2 dims [16, 16, 16, 24], heads [1, 1, 2, 2], MLP ratio 2,
SR [8, 4, 2, 1], depths [1, 1, 1, 1]; decoder channel 8, SAM state 4, mids 2 (AdaptiveAvgPool 4,
4 nodes). Every code path of mu is kept (SR at 8/4/2 and none, several heads, the CA hidden width
dims[0] // 16 = 1, all CFM/SAM pieces). Input [2, 3, 64, 64] (pixels k/255), a binary mask of
one ellipse per image.

Records: the state_dict before the step (weights quantised to multiples of 2^-12 so both sides
hold the same values exactly; stored as integers and a scale), input, mask, P1 and P2, the loss
structure_loss(P1) + structure_loss(P2), every parameter gradient, and the BatchNorm running
statistics after the forward, and P1/P2 of the first image in eval mode after that step. Loss variant: the reference's code (Polyp-PVT Train.py) passes
reduce='none' to binary_cross_entropy_with_logits, which PyTorch reads as the legacy reduce=True,
so its BCE term is the plain mean; the weighted wBCE of the paper is recorded too (loss_weighted)
and `loss_variant` names the one the gradients belong to.
"""
import math

import torch

from common import write_fixture
from polyp_pvt_ref import PRESETS, PVTv2, PolypPVT, structure_loss

torch.set_default_dtype(torch.float64)

CONFIG = {
    "backbone": {"inChans": 3, "embedDims": [16, 16, 16, 24], "numHeads": [1, 1, 2, 2], "mlpRatios": [2, 2, 2, 2],
                 "depths": [1, 1, 1, 1], "srRatios": [8, 4, 2, 1], "qkvBias": True, "dropPathRate": 0.0, "normEps": 1e-6},
    "channel": 8, "samPlaneMid": 4, "samMids": 2,
}
LOSS_VARIANT = "mean_bce"  # the reference code's behaviour (see the docstring)
SCALE = 2.0 ** -12


# ---- fixture -------------------------------------------------------------------------------

def seeded_weights(model, g):
    """Random weights at a useful scale (U(+-1/sqrt(fan_in)); norms' weights near 1), on the 2^-12 grid."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name or ".bn." in name):
                v = (1 + 0.4 * (torch.rand(p.shape, generator=g) - 0.5)) if name.endswith("weight") else 0.2 * (torch.rand(p.shape, generator=g) - 0.5)
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 16
                v = (torch.rand(p.shape, generator=g) * 2 - 1) / math.sqrt(fan_in)
            p.copy_(torch.round(v / SCALE) * SCALE)


def ints(t, scale):
    return [int(v) for v in torch.round(t.detach().reshape(-1) / scale).tolist()]


def floats(t):
    return [float("%.6g" % v) for v in t.detach().reshape(-1).tolist()]


def quantised(t, scale):
    return {"shape": list(t.shape), "dtype": "i32" if not t.is_floating_point() else "f32", "scale": scale, "q": ints(t, scale)}


def encoded(t):
    return {"shape": list(t.shape), "dtype": "f32", "data": floats(t)}


def ellipse_masks(b, size, g):
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    out = []
    for _ in range(b):
        cy, cx, ry, rx = (torch.rand(4, generator=g) * torch.tensor([0.4, 0.4, 0.2, 0.2]) + torch.tensor([0.3, 0.3, 0.12, 0.12])) * size
        out.append((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).to(torch.float64))
    return torch.stack(out).unsqueeze(1)


def main():
    g = torch.Generator().manual_seed(20240611)
    model = PolypPVT(CONFIG)
    seeded_weights(model, g)
    model.train()
    state0 = {k: quantised(v, SCALE if v.is_floating_point() else 1) for k, v in model.state_dict().items()}
    pixels = torch.randint(0, 256, (2, 3, 64, 64), generator=g)
    x = pixels.to(torch.float64) / 255
    mask = ellipse_masks(2, 64, g)
    p1, p2 = model(x)
    loss = structure_loss(p1, mask, LOSS_VARIANT) + structure_loss(p2, mask, LOSS_VARIANT)
    with torch.no_grad():
        loss_weighted = structure_loss(p1, mask, "weighted_bce") + structure_loss(p2, mask, "weighted_bce")
    loss.backward()
    running = {k: encoded(v) for k, v in model.state_dict().items() if "running_" in k}
    model.eval()  # BatchNorm on the running statistics the step left behind
    with torch.no_grad():
        e1, e2 = model(x[:1])
    fixture = {
        "family": "polyp_pvt", "generator": "test/golden/gen_polyp_pvt.py", "config": CONFIG, "loss_variant": LOSS_VARIANT,
        "state_dict": state0,
        "input": {"shape": list(x.shape), "dtype": "f32", "scale": 1 / 255, "q": pixels.reshape(-1).tolist()},
        "mask": {"shape": list(mask.shape), "dtype": "f32", "scale": 1, "q": ints(mask, 1)},
        "p1": encoded(p1), "p2": encoded(p2), "loss": float(loss), "loss_weighted": float(loss_weighted),
        "grads": {k: encoded(p.grad) for k, p in model.named_parameters()},
        "running_after": running,
        "eval_p1": encoded(e1), "eval_p2": encoded(e2),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "backbone_num_parameters": sum(p.numel() for p in model.backbone.parameters()),
        "pvt_v2_num_parameters": {k: sum(p.numel() for p in PVTv2(c).parameters()) for k, c in PRESETS.items()},
    }
    write_fixture("polyp_pvt", fixture)
    print(f"polyp_pvt: {fixture['num_parameters']} parameters, loss {float(loss):.6f}")


if __name__ == "__main__":
    main()
