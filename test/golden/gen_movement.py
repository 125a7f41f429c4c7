"""Golden cases for joining, padding and indexing: cat, stack, split, chunk, pad (constant and
replicate, negative pads), gather, index_select, scatter_add, index_add, embedding, masked_fill,
repeat, repeat_interleave. Awkward sizes (1, 7, 33, 65), dims 0/1/-1, and repeated indices so
every scatter-add backward really accumulates."""
import torch
import torch.nn.functional as F
from common import case, rand, write


def idx(*shape, high, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, shape, generator=g)


def with_repeats(*values):
    return torch.tensor(values, dtype=torch.int64)


cases = [
    # ---- cat / stack / split / chunk
    case("cat_dim0", lambda a, b, c: torch.cat([a, b, c], 0), [rand(1, 3, seed=1), rand(33, 3, seed=2), rand(2, 3, seed=3)]),
    case("cat_dim1", lambda a, b, c: torch.cat([a, b, c], 1), [rand(2, 1, 2, seed=4), rand(2, 7, 2, seed=5), rand(2, 65, 2, seed=6)]),
    case("cat_dimneg1", lambda a, b: torch.cat([a, b], -1), [rand(2, 7, seed=7), rand(2, 33, seed=8)]),
    case("stack_dim0", lambda a, b, c: torch.stack([a, b, c], 0), [rand(7, 3, seed=9), rand(7, 3, seed=10), rand(7, 3, seed=11)]),
    case("stack_dimneg1", lambda a, b: torch.stack([a, b], -1), [rand(1, 33, seed=12), rand(1, 33, seed=13)]),
    case("split_size", lambda a: torch.split(a, 10, 0), [rand(33, 3, seed=14)]),
    case("split_sections", lambda a: torch.split(a, [1, 7, 57], -1), [rand(2, 65, seed=15)]),
    case("chunk_dim0", lambda a: torch.chunk(a, 3, 0), [rand(7, 3, seed=16)]),
    case("chunk_dim1", lambda a: torch.chunk(a, 4, 1), [rand(1, 33, 3, seed=17)]),
    # ---- pad: pads list the last dim first; negative pads crop
    case("pad_constant_1d", lambda a, pads, value: F.pad(a, pads, value=value), [rand(3, 7, seed=18)], {"pads": [2, 3], "value": 0.5}),
    case("pad_constant_neg", lambda a, pads: F.pad(a, pads), [rand(1, 7, 33, seed=19)], {"pads": [-2, 3, 1, -1]}),
    case("pad_constant_3dims", lambda a, pads: F.pad(a, pads, value=-1.0), [rand(2, 3, 4, 5, seed=20)], {"pads": [1, -2, 0, 2, 3, -1]}),
    case("pad_replicate_3d", lambda a, pads: F.pad(a, pads, mode="replicate"), [rand(2, 3, 7, seed=21)], {"pads": [3, 1]}),
    case("pad_replicate_4d", lambda a, pads: F.pad(a, pads, mode="replicate"), [rand(1, 1, 7, 5, seed=22)], {"pads": [7, 2, 4, 1]}),
    case("pad_replicate_4d_neg", lambda a, pads: F.pad(a, pads, mode="replicate"), [rand(2, 1, 7, 5, seed=23)], {"pads": [-1, 3, 2, -2]}),
    case("pad_replicate_5d", lambda a, pads: F.pad(a, pads, mode="replicate"), [rand(1, 1, 3, 4, 5, seed=24)], {"pads": [1, 2, 0, 1, 2, 1]}),
    case("pad_replicate_single", lambda a, pads: F.pad(a, pads, mode="replicate"), [rand(1, 1, 1, seed=25)], {"pads": [2, 3]}),
    # ---- gather / index_select / embedding (repeated indices)
    case("gather_dim0", lambda a, i: torch.gather(a, 0, i), [rand(7, 5, seed=26), idx(4, 5, high=7, seed=27)]),
    case("gather_dim1", lambda a, i: torch.gather(a, 1, i), [rand(33, 7, seed=28), idx(33, 4, high=7, seed=29)]),
    case("gather_dimneg1", lambda a, i: torch.gather(a, -1, i), [rand(2, 3, 65, seed=30), idx(2, 2, 5, high=65, seed=31)]),
    case("gather_size1", lambda a, i: torch.gather(a, 1, i), [rand(7, 1, seed=32), torch.zeros(7, 3, dtype=torch.int64)]),
    case("index_select_dim0", lambda a, i: torch.index_select(a, 0, i), [rand(7, 9, seed=33), with_repeats(0, 3, 3, 6, 0, 1, 3)]),
    case("index_select_dim1", lambda a, i: torch.index_select(a, 1, i), [rand(3, 65, 2, seed=34), idx(9, high=65, seed=35)]),
    case("index_select_dimneg1", lambda a, i: torch.index_select(a, -1, i), [rand(5, 7, seed=36), with_repeats(6, 6, 6, 0, 2)]),
    case("embedding_small", lambda w, i: F.embedding(i, w), [rand(7, 5, seed=37), idx(3, 4, high=7, seed=38)]),
    case("embedding_65", lambda w, i: F.embedding(i, w), [rand(65, 3, seed=39), idx(1, 33, high=65, seed=40)]),
    case("embedding_vocab1", lambda w, i: F.embedding(i, w), [rand(1, 7, seed=41), torch.zeros(5, dtype=torch.int64)]),
    # ---- scatter_add / index_add (out of place)
    case("scatter_add_dim0", lambda a, i, s: a.scatter_add(0, i, s), [rand(7, 5, seed=42), idx(9, 5, high=7, seed=43), rand(9, 5, seed=44)]),
    case("scatter_add_dim1", lambda a, i, s: a.scatter_add(1, i, s), [rand(3, 33, seed=45), idx(2, 40, high=33, seed=46), rand(2, 40, seed=47)]),
    case("scatter_add_dimneg1", lambda a, i, s: a.scatter_add(-1, i, s), [rand(2, 3, 7, seed=48), idx(2, 2, 9, high=7, seed=49), rand(2, 2, 9, seed=50)]),
    case("scatter_add_src_larger", lambda a, i, s: a.scatter_add(1, i, s), [rand(3, 7, seed=51), idx(2, 5, high=7, seed=52), rand(3, 6, seed=53)], grad=False),
    case("index_add_dim0", lambda a, i, s: a.index_add(0, i, s), [rand(7, 3, seed=54), idx(10, high=7, seed=55), rand(10, 3, seed=56)]),
    case("index_add_dim1", lambda a, i, s: a.index_add(1, i, s), [rand(1, 33, 3, seed=57), idx(40, high=33, seed=58), rand(1, 40, 3, seed=59)]),
    case("index_add_dimneg1", lambda a, i, s: a.index_add(-1, i, s), [rand(3, 5, seed=60), with_repeats(4, 4, 0, 4), rand(3, 4, seed=61)]),
    # ---- masked_fill / repeat / repeat_interleave
    case("masked_fill_rows", lambda a, m, value: a.masked_fill(m.bool(), value), [rand(7, 9, seed=62), idx(7, 1, high=2, seed=63)], {"value": -2.5}),
    case("masked_fill_cols", lambda a, m, value: a.masked_fill(m.bool(), value), [rand(1, 3, 65, seed=64), idx(65, high=2, seed=65)], {"value": 1e4}),
    case("repeat_lead", lambda a, reps: a.repeat(*reps), [rand(3, 1, seed=66)], {"reps": [2, 1, 4]}),
    case("repeat_2d", lambda a, reps: a.repeat(*reps), [rand(7, seed=67)], {"reps": [3, 2]}),
    case("repeat_ones", lambda a, reps: a.repeat(*reps), [rand(2, 3, seed=68)], {"reps": [1, 1]}),
    case("repeat_interleave_dim0", lambda a, repeats, dim: torch.repeat_interleave(a, repeats, dim), [rand(3, 7, seed=69)], {"repeats": 2, "dim": 0}),
    case("repeat_interleave_dimneg1", lambda a, repeats, dim: torch.repeat_interleave(a, repeats, dim), [rand(2, 5, seed=70)], {"repeats": 3, "dim": -1}),
    case("repeat_interleave_65", lambda a, repeats, dim: torch.repeat_interleave(a, repeats, dim), [rand(1, seed=71)], {"repeats": 65, "dim": 0}),
]
write("movement", cases)
