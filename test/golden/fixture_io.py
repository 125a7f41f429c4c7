"""Writes a golden fixture: any JSON-like tree as two files in test/golden/fixtures/.

<family>.safetensors holds every long list of numbers (flat, shape [n]); <family>.json is the rest
of the tree, pretty-printed one entry per line (so a regeneration gives a readable diff), with
{"$tensor": "<name>"} where a list was, the name being the list's path in the tree. A list goes in
as I32 when it is all integers, F32 when every value is a float32, else F64, so the reader
(test/golden/read-fixture.ts) gets back exactly the numbers the generator wrote. No torch here:
generators that keep torch's default dtype import this module, not common.py."""
import json
import os
import struct

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

# Lists of numbers at least this long go to the .safetensors file; shorter ones (shapes, small
# arguments) stay readable in the index.
MIN_TENSOR = 16
# An index line is kept whole when it fits this width (the repository's line width).
WIDTH = 120


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_numbers(x):
    return isinstance(x, list) and len(x) >= MIN_TENSOR and all(_is_int(v) or isinstance(v, (float, np.floating)) for v in x)


def _dtype(values):
    if all(_is_int(v) for v in values):
        a = np.array(values, dtype=np.int64)
        if a.min() >= -2**31 and a.max() < 2**31:
            return "I32", a.astype("<i4")
    a = np.array(values, dtype=np.float64)
    f = a.astype(np.float32)
    if np.array_equal(f.astype(np.float64), a):
        return "F32", f.astype("<f4")
    return "F64", a.astype("<f8")


def _split(tree, path, tensors):
    """The tree with every long list of numbers replaced by a reference; the lists into `tensors`."""
    if _is_numbers(tree):
        name = "/".join(path)
        tensors[name] = _dtype(tree)
        return {"$tensor": name}
    if isinstance(tree, dict):
        return {k: _split(v, path + [str(k)], tensors) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, path + [str(i)], tensors) for i, v in enumerate(tree)]
    return tree


def _pretty(x, indent=0, prefix=0):
    """JSON with one entry per line; an entry that fits in WIDTH columns (with its key, `prefix`
    characters) stays on its line."""
    flat = json.dumps(x, separators=(", ", ": "), allow_nan=False)
    if indent + prefix + len(flat) + 1 <= WIDTH or not isinstance(x, (dict, list)) or not x:  # + 1: the comma
        return flat
    pad = " " * (indent + 1)
    if isinstance(x, dict):
        items = []
        for k, v in x.items():
            key = f"{json.dumps(k)}: "
            items.append(f"{pad}{key}{_pretty(v, indent + 1, len(key))}")
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _pretty(v, indent + 1) for v in x]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def write_safetensors(path, tensors):
    """tensors: {name: (dtype, little-endian numpy array)}, written in order, flat (shape [n])."""
    header, offset = {}, 0
    for name, (dtype, a) in tensors.items():
        header[name] = {"dtype": dtype, "shape": [int(a.size)], "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, a in tensors.values():
            f.write(a.tobytes())


def write_fixture(family, tree):
    """Writes fixtures/<family>.json (the index) and fixtures/<family>.safetensors (the numbers)."""
    tensors = {}
    index = _split(tree, [], tensors)
    base = os.path.join(FIXTURES, family)
    write_safetensors(base + ".safetensors", tensors)
    with open(base + ".json", "w") as f:
        f.write(_pretty(index) + "\n")
    size = os.path.getsize(base + ".json") + os.path.getsize(base + ".safetensors")
    print(f"wrote {base}.json + .safetensors: {len(tensors)} tensors, {size / 1e3:.1f} kB")
