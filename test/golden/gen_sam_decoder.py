"""Golden state for the SAM prompt encoder + mask decoder parity test (test/models/sam-decoder.test.ts),
from the float64 re-implementation in sam_ref.py (segment-anything's module structure and keys).

Reduced config (REDUCED): 32-d, 2 heads (self-attention heads 16-d, downsampled cross-attention
heads 8-d), MLP 48, depth 2, 4 mask tokens, a non-square 4 x 5 embedding grid for a 64 x 80 input
(so x/y order errors show), mask_in_chans 8. Weights are seeded and quantised to multiples of 2^-12
so both sides hold the same values exactly. Two prompt sets, each on one image embedding [1, C, 4, 5]
shared by two prompts (SAM's repeat_interleave):
  A: three points per prompt (labels 1 / 0 / -1, padded with not_a_point since there is no box)
     and a mask input [2, 1, 16, 20] (mask_downscaling);
  B: a box and one point per prompt, no mask (no_mask_embed).
Records: the dense PE, both cases' sparse and dense prompt embeddings, all 4 masks and IoU
predictions (before the multimask slice), and the gradient of every parameter of
L = sum_cases (sum(masks * cot_m) + sum(iou * cot_i)) with seeded cotangents; case B's first mask
post-processed (bilinear to 64 x 80, crop to 60 x 80, bilinear to 45 x 60).

Full size (FULL): SAM's dimensions (256-d, 8 heads, MLP 2048, depth 2) on an 8 x 8 embedding grid
for a 128 x 128 input; weights from an integer formula both sides compute exactly (det_values), one
box prompt: all 4 masks and IoU predictions. Plus the parameter counts of SAM's own config
(prompt encoder and mask decoder).
"""
import math

import torch

from common import write_fixture
from sam_ref import SAM_CONFIG, SamPromptDecoder, postprocess_masks

torch.set_default_dtype(torch.float64)

REDUCED = {**SAM_CONFIG, "embedDim": 32, "imageEmbeddingSize": [4, 5], "inputImageSize": [64, 80], "maskInChans": 8,
           "numHeads": 2, "mlpDim": 48, "iouHeadHiddenDim": 24}
FULL = {**SAM_CONFIG, "imageEmbeddingSize": [8, 8], "inputImageSize": [128, 128]}
SCALE = 2.0 ** -12


def ints(t, scale):
    return [int(v) for v in torch.round(t.detach().reshape(-1) / scale).tolist()]


def quantised(t, scale=SCALE):
    return {"shape": list(t.shape), "dtype": "f32", "scale": scale, "q": ints(t, scale)}


def encoded(t):
    return {"shape": list(t.shape), "dtype": "f32", "data": [float("%.6g" % v) for v in t.detach().reshape(-1).tolist()]}


def q_rand(shape, g, lo=-1.0, hi=1.0):
    return torch.round((torch.rand(shape, generator=g) * (hi - lo) + lo) / SCALE) * SCALE


def seeded_weights(model, g):
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if t.ndim == 1:
                v = 1 + 0.4 * (torch.rand(t.shape, generator=g) - 0.5) if name.endswith("weight") else 0.2 * (torch.rand(t.shape, generator=g) - 0.5)
            elif "gaussian" in name or "embed" in name or "token" in name:
                v = torch.rand(t.shape, generator=g) * 2 - 1
            else:
                v = (torch.rand(t.shape, generator=g) * 2 - 1) / math.sqrt(t[0].numel())
            t.copy_(torch.round(v / SCALE) * SCALE)


def det_values(index, key, shape):
    """The full-size weights: an integer formula, exact in float64 and in JavaScript doubles."""
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    u = ((i * 48271 + (index + 1) * 7919) % 65521).to(torch.float64) / 65521
    s = 2 * u - 1
    if len(shape) == 1:
        v = 1 + 0.2 * s if key.endswith("weight") else 0.1 * s
    elif "gaussian" in key or "embed" in key or "token" in key:
        v = s
    else:
        v = s / math.sqrt(math.prod(shape[1:]))
    return v.to(torch.float32).to(torch.float64).reshape(shape)


def run(model, image, points, boxes, masks):
    pe = model.prompt_encoder
    sparse, dense = pe(points, boxes, masks)
    m, iou = model.mask_decoder.predict_masks(image, pe.get_dense_pe(), sparse, dense)
    return sparse, dense, m, iou


def main():
    g = torch.Generator().manual_seed(20260611)
    model = SamPromptDecoder(REDUCED)
    seeded_weights(model, g)
    state0 = {k: quantised(v) for k, v in model.state_dict().items()}
    h, w = REDUCED["imageEmbeddingSize"]
    image_a, image_b = q_rand((1, 32, h, w), g), q_rand((1, 32, h, w), g)
    points_a = torch.tensor([[[5.0, 7.0], [60.0, 40.0], [0.0, 0.0]], [[79.0, 63.0], [12.0, 50.0], [33.0, 3.0]]])
    labels_a = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]])
    mask_a = q_rand((2, 1, 4 * h, 4 * w), g, -4, 4)
    boxes_b = torch.tensor([[10.0, 6.0, 52.0, 41.0], [0.0, 20.0, 79.0, 63.0]])
    points_b = torch.tensor([[[30.0, 25.0]], [[40.0, 44.0]]])
    labels_b = torch.tensor([[1.0], [0.0]])
    cases = {
        "a": dict(image=image_a, points=(points_a, labels_a), boxes=None, masks=mask_a),
        "b": dict(image=image_b, points=(points_b, labels_b), boxes=boxes_b, masks=None),
    }
    out, total = {}, 0
    for name, c in cases.items():
        sparse, dense, m, iou = run(model, c["image"], c["points"], c["boxes"], c["masks"])
        cot_m, cot_i = q_rand(m.shape, g), q_rand(iou.shape, g)
        total = total + (m * cot_m).sum() + (iou * cot_i).sum()
        out[name] = {
            "image": quantised(c["image"]), "points": c["points"][0].reshape(-1).tolist(), "points_shape": list(c["points"][0].shape),
            "labels": c["points"][1].reshape(-1).tolist(),
            "boxes": None if c["boxes"] is None else c["boxes"].reshape(-1).tolist(),
            "mask_input": None if c["masks"] is None else quantised(c["masks"]),
            "sparse": encoded(sparse), "dense": encoded(dense), "masks": encoded(m), "iou": encoded(iou),
            "cot_masks": quantised(cot_m), "cot_iou": quantised(cot_i),
        }
        if name == "b":
            out[name]["postprocessed"] = encoded(postprocess_masks(m[:, :1], REDUCED["inputImageSize"], (60, 80), (45, 60)))
    total.backward()
    reduced = {
        "config": REDUCED, "state_dict": state0, "dense_pe": encoded(model.prompt_encoder.get_dense_pe()), "cases": out,
        "grads": {k: encoded(p.grad) for k, p in model.named_parameters()},
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }

    full_model = SamPromptDecoder(FULL)
    with torch.no_grad():
        for i, (k, t) in enumerate(full_model.state_dict(keep_vars=True).items()):
            t.copy_(det_values(i, k, list(t.shape)))
        image = q_rand((1, 256, 8, 8), g)
        box = torch.tensor([[20.0, 12.0, 100.0, 90.0]])
        _, _, m, iou = run(full_model, image, None, box, None)
    full = {"config": FULL, "image": quantised(image), "boxes": box.reshape(-1).tolist(), "masks": encoded(m), "iou": encoded(iou),
            "keys": [[k, list(t.shape)] for k, t in full_model.state_dict().items()]}

    sam = SamPromptDecoder(SAM_CONFIG)
    counts = {"prompt_encoder": sum(p.numel() for p in sam.prompt_encoder.parameters()),
              "mask_decoder": sum(p.numel() for p in sam.mask_decoder.parameters())}
    fixture = {"family": "sam_decoder", "generator": "test/golden/gen_sam_decoder.py", "reduced": reduced, "full": full, "sam_num_parameters": counts}
    write_fixture("sam_decoder", fixture)
    print(f"sam_decoder: reduced {reduced['num_parameters']} parameters; SAM {counts}")


if __name__ == "__main__":
    main()
