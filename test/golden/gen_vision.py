"""Golden cases for the vision ops: conv2d / conv1d / conv_transpose2d, the pools and
interpolate, on awkward shapes (odd planes, strides leaving a remainder, groups, depthwise,
dilation, patchify, 1x1) and the configurations the models use (7x7 s4 p3, k31 s1 p15, adaptive
to 1 and 6x6, bilinear x0.5 / x2 / x8 with and without align_corners). Gradients for every
float input."""
import numpy as np
import torch
import torch.nn.functional as F
from common import case as _case, rand as _rand, write


def rand(*shape, seed=0, low=-1.0, high=1.0):
    """common.rand quantised to multiples of 1/1000: short in JSON, still distinct enough that
    windows rarely tie (and a tie resolves the same way: first maximum in scan order)."""
    return torch.round(_rand(*shape, seed=seed, low=low, high=high) * 1000).to(torch.float32).to(torch.float64) / 1000


def case(name, fn, inputs, args=None):
    """Like common.case, but `args` is only recorded (fn closes over what it needs)."""
    return _case(name, lambda *xs, **_: fn(*xs), inputs, args or {})


def conv(name, xs, ws, bias=True, seed=0, **args):
    inputs = [rand(*xs, seed=seed), rand(*ws, seed=seed + 1, low=-0.5, high=0.5)]
    if bias:
        inputs.append(rand(ws[0], seed=seed + 2))
    return case(name, lambda x, w, b=None: F.conv2d(x, w, b, **args), inputs, args)


def conv_t(name, xs, ws, cout, bias=True, seed=0, **args):
    inputs = [rand(*xs, seed=seed), rand(*ws, seed=seed + 1, low=-0.5, high=0.5)]
    if bias:
        inputs.append(rand(cout, seed=seed + 2))
    return case(name, lambda x, w, b=None: F.conv_transpose2d(x, w, b, **args), inputs, args)


def interp(name, xs, seed=0, **args):
    return case(name, lambda x: F.interpolate(x, **args), [rand(*xs, seed=seed)], args)


cases = [
    # conv2d
    conv("conv2d_3x3_p1", (2, 2, 5, 7), (3, 2, 3, 3), padding=1, seed=1),
    conv("conv2d_3x3_s2_p1_remainder", (1, 2, 12, 11), (3, 2, 3, 3), stride=2, padding=1, seed=4),
    conv("conv2d_3x3_s3x2_nobias", (1, 2, 13, 11), (3, 2, 3, 3), bias=False, stride=(3, 2), seed=7),
    conv("conv2d_7x7_s4_p3", (1, 1, 13, 15), (2, 1, 7, 7), stride=4, padding=3, seed=10),
    conv("conv2d_groups2", (1, 4, 5, 7), (4, 2, 3, 3), padding=1, groups=2, seed=13),
    conv("conv2d_depthwise", (1, 4, 5, 7), (4, 1, 3, 3), padding=1, groups=4, seed=16),
    conv("conv2d_depthwise_x2_s2", (1, 3, 9, 8), (6, 1, 3, 3), stride=2, padding=1, groups=3, seed=19),
    conv("conv2d_dilation2", (1, 2, 9, 8), (2, 2, 3, 3), padding=2, dilation=2, seed=22),
    conv("conv2d_dilation6", (1, 1, 13, 11), (2, 1, 3, 3), padding=6, dilation=6, seed=25),
    conv("conv2d_1x1", (1, 4, 5, 7), (3, 4, 1, 1), seed=28),
    conv("conv2d_patchify8", (1, 1, 32, 32), (3, 1, 8, 8), stride=8, seed=31),
    conv("conv2d_sr2_remainder", (1, 4, 9, 9), (4, 4, 2, 2), stride=2, seed=34),
    case("conv1d_k1", lambda x, w, b: F.conv1d(x, w, b), [rand(2, 5, 7, seed=37), rand(3, 5, 1, seed=38), rand(3, seed=39)]),
    case("conv1d_kL", lambda x, w: F.conv1d(x, w), [rand(2, 4, 7, seed=40), rand(3, 4, 7, seed=41)]),
    case("conv1d_k3_s2_p1_groups2", lambda x, w: F.conv1d(x, w, stride=2, padding=1, groups=2), [rand(2, 4, 9, seed=42), rand(6, 2, 3, seed=43)],
         {"stride": 2, "padding": 1, "groups": 2}),
    # conv_transpose2d
    conv_t("conv_transpose2d_k2s2", (1, 3, 5, 7), (3, 2, 2, 2), 2, stride=2, seed=44),
    conv_t("conv_transpose2d_s2_p1_op1_groups2", (1, 4, 4, 5), (4, 2, 3, 3), 4, stride=2, padding=1, output_padding=1, groups=2, seed=47),
    conv_t("conv_transpose2d_s1_p1_dil2", (1, 3, 5, 6), (3, 2, 3, 3), 2, bias=False, padding=1, dilation=2, seed=50),
    # pools
    case("max_pool2d_k3_s2_p1", lambda x: F.max_pool2d(x, 3, 2, 1), [rand(1, 2, 13, 11, seed=53)], {"kernel": 3, "stride": 2, "padding": 1}),
    case("max_pool2d_k2", lambda x: F.max_pool2d(x, 2), [rand(1, 2, 7, 9, seed=54)], {"kernel": 2}),
    case("avg_pool2d_k3_s2_p1", lambda x: F.avg_pool2d(x, 3, 2, 1), [rand(1, 1, 13, 11, seed=55)], {"kernel": 3, "stride": 2, "padding": 1}),
    case("avg_pool2d_k3_s2_p1_exclude_pad", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [rand(1, 1, 13, 11, seed=56)],
         {"kernel": 3, "stride": 2, "padding": 1, "countIncludePad": False}),
    case("avg_pool2d_k31_s1_p15", lambda x: F.avg_pool2d(x, 31, 1, 15), [rand(1, 1, 40, 40, seed=57)], {"kernel": 31, "stride": 1, "padding": 15}),
    case("adaptive_avg_pool2d_1", lambda x: F.adaptive_avg_pool2d(x, 1), [rand(2, 2, 7, 9, seed=58)], {"outputSize": 1}),
    case("adaptive_avg_pool2d_6", lambda x: F.adaptive_avg_pool2d(x, 6), [rand(1, 2, 13, 11, seed=59)], {"outputSize": 6}),
    case("adaptive_avg_pool2d_7_to_3x4", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [rand(1, 2, 7, 7, seed=60)], {"outputSize": [3, 4]}),
    case("adaptive_max_pool2d_1", lambda x: F.adaptive_max_pool2d(x, 1), [rand(2, 2, 7, 9, seed=61)], {"outputSize": 1}),
    case("adaptive_max_pool2d_7_to_3", lambda x: F.adaptive_max_pool2d(x, 3), [rand(1, 2, 7, 9, seed=62)], {"outputSize": 3}),
    # interpolate
    interp("bilinear_x2", (1, 1, 5, 7), scale_factor=2, mode="bilinear", align_corners=False, seed=63),
    interp("bilinear_x2_align", (1, 1, 5, 7), scale_factor=2, mode="bilinear", align_corners=True, seed=64),
    interp("bilinear_x0.5", (1, 1, 13, 11), scale_factor=0.5, mode="bilinear", align_corners=False, seed=65),
    interp("bilinear_x0.5_align", (1, 1, 13, 11), scale_factor=0.5, mode="bilinear", align_corners=True, seed=66),
    interp("bilinear_x8", (1, 1, 2, 2), scale_factor=8, mode="bilinear", align_corners=False, seed=67),
    interp("bilinear_x8_align", (1, 1, 2, 2), scale_factor=8, mode="bilinear", align_corners=True, seed=68),
    interp("bilinear_x2.5_scale_rule", (1, 1, 5, 7), scale_factor=2.5, mode="bilinear", align_corners=False, seed=69),
    interp("bilinear_size_29x17", (1, 1, 13, 11), size=(29, 17), mode="bilinear", align_corners=False, seed=70),
    interp("bilinear_size_19x13_align", (1, 1, 9, 7), size=(19, 13), mode="bilinear", align_corners=True, seed=71),
    interp("bilinear_size_5x3_down", (1, 1, 13, 11), size=(5, 3), mode="bilinear", align_corners=False, seed=72),
    interp("nearest_x2", (1, 1, 5, 7), scale_factor=2, mode="nearest", seed=73),
    interp("nearest_x0.5", (1, 1, 13, 11), scale_factor=0.5, mode="nearest", seed=74),
    interp("nearest_x2.5_scale_rule", (1, 1, 5, 7), scale_factor=2.5, mode="nearest", seed=75),
    interp("nearest_size_19x13", (1, 1, 9, 7), size=(19, 13), mode="nearest", seed=76),
]


def compact(record):
    """Shorter numbers: inputs and cotangents are written as the shortest decimal that rounds to
    the same float32 (the engine sees exactly the oracle's inputs), outputs and gradients with 6
    significant digits (relative error < 1e-6, far inside the tests' tolerances). Keeps the
    fixture under 300 KB."""
    def fmt(e, short):
        if e is None or e["dtype"] != "f32":
            return e
        return {**e, "data": [float(str(np.float32(v))) if short else float("%.6g" % v) for v in e["data"]]}
    out = dict(record)
    for key, short in (("inputs", True), ("cotangents", True), ("outputs", False), ("grads", False)):
        if key in out:
            out[key] = [fmt(e, short) for e in out[key]]
    return out


write("vision", [compact(c) for c in cases])
