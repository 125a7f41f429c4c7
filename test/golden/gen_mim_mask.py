"""Golden masks for engine/data/mim-mask.ts: BEiT's block-wise MaskingGenerator (microsoft/unilm
beit/masking_generator.py, identical in baaivision/EVA EVA-02/asuka/masking_generator.py), run
with the engine's CPU generator (xoshiro128** seeded by SplitMix32, engine/data/sampler.ts)
ported here bit for bit in place of Python's `random`. The generator's algorithm is transcribed
from the reference step for step, so equal masks mean the TypeScript port behaves as BEiT's.

Also records the first outputs of the generator so a generator bug is caught on its own."""
import math

from common import write

M = 0xFFFFFFFF


def rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M


class Rng:
    def __init__(self, seed):
        x = seed & M
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B9) & M
            z = x
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M
            self.s.append(z ^ (z >> 16))
        if not any(self.s):
            self.s[0] = 1

    def next_u32(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 9) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result

    def random(self):
        a = self.next_u32() >> 5
        b = self.next_u32() >> 6
        return (a * 67108864.0 + b) / 9007199254740992.0

    def below(self, n):
        limit = 2**32 - (2**32 % n)
        while True:
            x = self.next_u32()
            if x < limit:
                return x % n

    # The two calls BEiT's generator makes on Python's `random`.
    def uniform(self, a, b):
        return a + (b - a) * self.random()

    def randint(self, a, b):
        return a + self.below(b - a + 1)


class MaskingGenerator:
    """BEiT's MaskingGenerator with `random` replaced by an Rng and numpy by lists."""

    def __init__(self, input_size, num_masking_patches, min_num_patches=4, max_num_patches=None, min_aspect=0.3, max_aspect=None):
        self.height, self.width = input_size
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))

    def _mask(self, rng, mask, max_mask_patches):
        delta = 0
        for _ in range(10):
            target_area = rng.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(rng.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = rng.randint(0, self.height - h)
                left = rng.randint(0, self.width - w)
                num_masked = sum(mask[i][j] for i in range(top, top + h) for j in range(left, left + w))
                if 0 < h * w - num_masked <= max_mask_patches:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if mask[i][j] == 0:
                                mask[i][j] = 1
                                delta += 1
                if delta > 0:
                    break
        return delta

    def __call__(self, rng):
        mask = [[0] * self.width for _ in range(self.height)]
        mask_count = 0
        while mask_count < self.num_masking_patches:
            max_mask_patches = min(self.num_masking_patches - mask_count, self.max_num_patches)
            delta = self._mask(rng, mask, max_mask_patches)
            if delta == 0:
                break
            mask_count += delta
        return [v for row in mask for v in row]


def main():
    cases = []
    rng = Rng(12345)
    cases.append({"name": "rng", "seed": 12345, "u32": [rng.next_u32() for _ in range(8)],
                  "random": [rng.random() for _ in range(4)], "below7": [rng.below(7) for _ in range(8)]})
    configs = [
        ("beit_14x14", dict(input_size=(14, 14), num_masking_patches=75, min_num_patches=16), [0, 1, 2, 3]),
        ("eva02_16x16", dict(input_size=(16, 16), num_masking_patches=105, min_num_patches=16), [0, 1, 7, 42]),
        ("tiny_8x8_min4", dict(input_size=(8, 8), num_masking_patches=26, min_num_patches=4), [0, 5]),
        ("rect_6x10_max8", dict(input_size=(6, 10), num_masking_patches=24, min_num_patches=4, max_num_patches=8), [3]),
        # Too many patches for a 4x4 grid with blocks below 4x4: the reference under-shoots.
        ("undershoot_4x4", dict(input_size=(4, 4), num_masking_patches=16, min_num_patches=4), [0, 1]),
    ]
    for name, cfg, seeds in configs:
        gen = MaskingGenerator(**cfg)
        for seed in seeds:
            rng = Rng(seed)
            masks = [gen(rng) for _ in range(3)]  # three in a row from one generator
            opts = {"height": cfg["input_size"][0], "width": cfg["input_size"][1], "numMaskingPatches": cfg["num_masking_patches"],
                    "minNumPatches": cfg["min_num_patches"]}
            if cfg.get("max_num_patches") is not None:
                opts["maxNumPatches"] = cfg["max_num_patches"]
            cases.append({"name": f"{name}_seed{seed}", "seed": seed, "options": opts,
                          "masks": ["".join(map(str, m)) for m in masks], "counts": [sum(m) for m in masks]})
    # Count statistics of the reference with Python's own `random` (Mersenne Twister): the port
    # must show the same distribution with its own generator (it under-shoots about a third of
    # the time on these settings).
    import random

    class PyRandom:
        uniform = staticmethod(random.uniform)
        randint = staticmethod(random.randint)

    for name, cfg in [("beit_14x14", dict(input_size=(14, 14), num_masking_patches=75, min_num_patches=16)),
                      ("eva02_16x16", dict(input_size=(16, 16), num_masking_patches=105, min_num_patches=16))]:
        random.seed(0)
        gen, n, draws = MaskingGenerator(**cfg), cfg["num_masking_patches"], 20000
        counts = [sum(gen(PyRandom)) for _ in range(draws)]
        cases.append({"name": f"stats_{name}", "options": {"height": cfg["input_size"][0], "width": cfg["input_size"][1],
                      "numMaskingPatches": n, "minNumPatches": cfg["min_num_patches"]}, "draws": draws,
                      "exactFraction": sum(c == n for c in counts) / draws, "meanCount": sum(counts) / draws,
                      "minCount": min(counts)})
    write("mim_mask", cases)


if __name__ == "__main__":
    main()
