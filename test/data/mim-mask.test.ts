// Block-wise MIM masks against BEiT's MaskingGenerator (test/golden/gen_mim_mask.py runs the
// reference algorithm with this engine's generator ported to Python).
import { describe, it, expect } from 'vitest';
import { readFixture } from '../golden/read-fixture.ts';
import { Rng } from '../../engine/data/sampler.ts';
import { MaskingGenerator, blockwiseMasks, type MaskingOptions } from '../../engine/data/mim-mask.ts';

interface MaskCase {
  name: string;
  seed: number;
  options: MaskingOptions;
  masks: string[];
  counts: number[];
}
interface StatsCase {
  name: string;
  options: MaskingOptions;
  draws: number;
  exactFraction: number;
  meanCount: number;
  minCount: number;
}
interface RngCase {
  name: 'rng';
  seed: number;
  u32: number[];
  random: number[];
  below7: number[];
}
const cases = readFixture<{ cases: (MaskCase | StatsCase | RngCase)[] }>('mim_mask').cases;
const count = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

describe('generator (xoshiro128**)', () => {
  it('reproduces the Python port bit for bit', () => {
    const c = cases.find((x) => x.name === 'rng') as RngCase;
    const rng = new Rng(c.seed);
    expect(Array.from({ length: 8 }, () => rng.nextU32())).toEqual(c.u32);
    expect(Array.from({ length: 4 }, () => rng.random())).toEqual(c.random);
    expect(Array.from({ length: 8 }, () => rng.below(7))).toEqual(c.below7);
  });
});

describe('MaskingGenerator', () => {
  const maskCases = cases.filter((c): c is MaskCase => 'masks' in c);
  it.each(maskCases.map((c) => [c.name, c] as const))('%s equals the reference mask for mask', (_, c) => {
    const gen = new MaskingGenerator(c.options);
    const rng = new Rng(c.seed);
    for (let k = 0; k < c.masks.length; k++) {
      const m = gen.generate(rng);
      expect(m.length).toBe(c.options.height * (c.options.width ?? c.options.height));
      expect(Array.from(m).join(''), `mask ${k}`).toBe(c.masks[k]);
      expect(count(m)).toBe(c.counts[k]);
    }
  });

  const stats = cases.filter((c): c is StatsCase => 'exactFraction' in c);
  it.each(stats.map((c) => [c.name, c] as const))('%s: the count distribution matches the reference', (_, c) => {
    const gen = new MaskingGenerator(c.options);
    const rng = new Rng(2024);
    const target = c.options.numMaskingPatches!;
    const draws = 4000;
    let exact = 0,
      sum = 0,
      over = 0;
    for (let k = 0; k < draws; k++) {
      const n = count(gen.generate(rng));
      exact += n === target ? 1 : 0;
      sum += n;
      over += n > target ? 1 : 0;
    }
    expect(over, 'never more than the target').toBe(0);
    // Binomial standard error of the two fractions together is ~0.008: 0.04 is about 5 sigma.
    expect(Math.abs(exact / draws - c.exactFraction)).toBeLessThan(0.04);
    expect(Math.abs(sum / draws - c.meanCount)).toBeLessThan(0.1);
  });

  it('is deterministic per seed and differs between seeds', () => {
    const gen = new MaskingGenerator({ height: 16, numMaskingPatches: 105, minNumPatches: 16 });
    const a = blockwiseMasks(gen, 4, new Rng(9)),
      b = blockwiseMasks(gen, 4, new Rng(9)),
      c = blockwiseMasks(gen, 4, new Rng(10));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(a.length).toBe(4 * 256);
  });

  it('defaults: 0.4 of the grid, min 16 per block, square grid', () => {
    const gen = new MaskingGenerator({ height: 14 });
    expect([gen.width, gen.numMaskingPatches, gen.minNumPatches, gen.maxNumPatches]).toEqual([14, 78, 16, 78]);
  });

  it('rejects impossible settings', () => {
    expect(() => new MaskingGenerator({ height: 4, numMaskingPatches: 17 })).toThrow(
      /numMaskingPatches must be an integer in \[0, 16\]/,
    );
    expect(() => new MaskingGenerator({ height: 0 })).toThrow(/grid must be positive/);
  });
});
