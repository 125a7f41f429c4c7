"""Golden .safetensors files for engine/io/safetensors.ts, written by a reference writer built
here from the format's specification (huggingface/safetensors README "Format", and the layout of
the reference Rust writer, safetensors/src/tensor.rs::prepare): Debian has no python3-safetensors.

  8 bytes   header length N, u64 little-endian
  N bytes   compact JSON: "__metadata__" first (if any), then the tensors ordered by dtype
            (the Rust Dtype enum order, largest first) and then by name (UTF-8 byte order),
            each {"dtype", "shape", "data_offsets": [begin, end]}; padded with spaces to a
            multiple of 8 bytes
  rest      the tensors' little-endian bytes in that order

Writes test/golden/fixtures/*.safetensors and safetensors.json (expected values; NaN/inf as
strings, int64 as decimal strings). Run: /usr/bin/python3 test/golden/generate.py safetensors"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
# Position in the Rust `Dtype` enum (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_*, I16, U16, F16,
# BF16, I32, U32, F32, C64, F64, I64, U64): the writer sorts by it, descending.
RANK = {"BOOL": 0, "U8": 4, "F16": 13, "BF16": 14, "I32": 15, "F32": 17, "I64": 21}


def write_safetensors(path, tensors, metadata=None, order=None):
    """tensors: name -> (dtype, shape, raw little-endian bytes). `order` overrides the reference
    order (to write a file as some older writers did)."""
    names = order or sorted(tensors, key=lambda k: (-RANK[tensors[k][0]], k.encode("utf-8")))
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in names:
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bf16_bits(values):
    """float32 -> bfloat16 bits by truncation; the values below are exact in bfloat16."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    assert np.all((bits & 0xFFFF) == 0) or np.isnan(values).any()
    return (bits >> 16).astype("<u2")


def enc_float(v):
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0 and np.signbit(v):
        return "-0"
    return v


def tensor(dtype, shape, arr):
    arr = np.asarray(arr)
    return (dtype, tuple(shape), arr.tobytes())


def main():
    rs = np.random.RandomState(0)
    expected = {}

    f32 = rs.randn(3, 5).astype("<f4")
    half = np.array([1, -2.5, 65504, 6e-8, -0.0, np.inf, np.nan, 0.1], dtype="<f2")
    bf = np.array([1, -3.140625, 2.0 ** 100, -np.inf, 0.0078125], dtype=np.float32)
    bf_raw = bf16_bits(bf)
    bf_raw = np.concatenate([bf_raw, np.array([0x7FC1], dtype="<u2")])  # a NaN with a payload
    i32 = np.array([-2**31, 2**31 - 1, 0, -7], dtype="<i4")
    i64 = np.array([[0, -1, 5], [2**31 - 1, -2**31, 123456]], dtype="<i8")
    u8 = np.array([0, 1, 127, 128, 254, 255], dtype="<u1")
    flags = np.array([1, 0, 1], dtype="<u1")
    basic = {
        "embed.weight": tensor("F32", (3, 5), f32),
        "scalar": tensor("F32", (), np.array(3.5, dtype="<f4")),
        "empty": tensor("F32", (0, 4), np.zeros((0, 4), dtype="<f4")),
        "half": tensor("F16", (2, 4), half),
        "bf": tensor("BF16", (6,), bf_raw),
        "ids": tensor("I32", (4,), i32),
        "pos": tensor("I64", (2, 3), i64),
        "bytes": tensor("U8", (6,), u8),
        "flags": tensor("BOOL", (3,), flags),
    }
    meta = {"format": "pt", "note": 'quote " backslash \\ newline \n tab \t control \x01 unicode é ✓'}
    write_safetensors(os.path.join(FIXTURES, "basic.safetensors"), basic, meta)
    bf_vals = [enc_float(v) for v in bf] + ["nan"]
    expected["basic"] = {
        "metadata": meta,
        "tensors": {
            "embed.weight": {"dtype": "F32", "shape": [3, 5], "values": [enc_float(v) for v in f32.reshape(-1)]},
            "scalar": {"dtype": "F32", "shape": [], "values": [3.5]},
            "empty": {"dtype": "F32", "shape": [0, 4], "values": []},
            "half": {"dtype": "F16", "shape": [2, 4], "values": [enc_float(v) for v in half.astype(np.float64)],
                     "bits": half.view("<u2").tolist()},
            "bf": {"dtype": "BF16", "shape": [6], "values": bf_vals, "bits": bf_raw.tolist()},
            "ids": {"dtype": "I32", "shape": [4], "values": i32.tolist()},
            "pos": {"dtype": "I64", "shape": [2, 3], "values": [str(v) for v in i64.reshape(-1)]},
            "bytes": {"dtype": "U8", "shape": [6], "values": u8.tolist()},
            "flags": {"dtype": "BOOL", "shape": [3], "values": flags.tolist()},
        },
    }

    # Names whose UTF-8 byte order differs from UTF-16 code-unit order (U+FF5A vs U+1F600).
    names = ["b", "a", "a.b", "A", "a10", "a9", "é", "\uff5a", "\U0001F600"]
    named = {n: tensor("F32", (1,), np.array([i], dtype="<f4")) for i, n in enumerate(names)}
    write_safetensors(os.path.join(FIXTURES, "names.safetensors"), named)
    expected["names"] = {"metadata": None, "tensors": {n: {"dtype": "F32", "shape": [1], "values": [float(i)]} for i, n in enumerate(names)},
                         "order": sorted(names, key=lambda k: k.encode("utf-8"))}

    big = np.array([2**40, -2**33, 5], dtype="<i8")
    write_safetensors(os.path.join(FIXTURES, "int64_big.safetensors"), {"big": tensor("I64", (3,), big)}, {"kind": "int64"})
    expected["int64_big"] = {"metadata": {"kind": "int64"}, "tensors": {"big": {"dtype": "I64", "shape": [3], "values": [str(v) for v in big]}}}

    # An F16 tensor before an F32 one: valid, but not the reference writer's order.
    legacy = {"a": tensor("F16", (2,), np.array([1.5, -2], dtype="<f2")), "b": tensor("F32", (1,), np.array([7], dtype="<f4"))}
    write_safetensors(os.path.join(FIXTURES, "legacy_order.safetensors"), legacy, order=["a", "b"])
    expected["legacy_order"] = {"metadata": None, "tensors": {"a": {"dtype": "F16", "shape": [2], "values": [1.5, -2.0]},
                                                              "b": {"dtype": "F32", "shape": [1], "values": [7.0]}}}

    with open(os.path.join(FIXTURES, "safetensors.json"), "w") as f:
        json.dump({"family": "safetensors", "generator": "test/golden/gen_safetensors.py", "files": expected}, f, indent=1, ensure_ascii=False)
    print(f"wrote {len(expected)} .safetensors files and safetensors.json in {FIXTURES}")


if __name__ == "__main__":
    main()
