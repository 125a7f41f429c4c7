// Seeded shuffling, samplers and resumable data order.
import { describe, it, expect } from 'vitest';
import {
  Rng,
  shuffle,
  randperm,
  batches,
  inverseFrequencyWeights,
  SequentialSampler,
  RandomSampler,
  WeightedRandomSampler,
  DataOrder,
  type Sampler,
} from '../../engine/data/sampler.ts';

/** Pearson's chi-square statistic of observed counts against expected counts. */
function chiSquare(observed: number[], expected: number[]): number {
  return observed.reduce((s, o, i) => s + (o - expected[i]) ** 2 / expected[i], 0);
}

describe('Rng', () => {
  it('reproduces per seed and resumes from a saved state', () => {
    const a = new Rng(5),
      b = new Rng(5);
    const xs = Array.from({ length: 10 }, () => a.nextU32());
    expect(Array.from({ length: 10 }, () => b.nextU32())).toEqual(xs);
    expect(new Rng(6).nextU32()).not.toBe(xs[0]);
    const state = a.getState();
    const next = Array.from({ length: 5 }, () => a.random());
    const c = new Rng(123).setState(state);
    expect(Array.from({ length: 5 }, () => c.random())).toEqual(next);
  });

  it('random() is in [0, 1) and below(n) is uniform (chi-square)', () => {
    const rng = new Rng(1);
    let lo = 1,
      hi = 0;
    for (let i = 0; i < 10000; i++) {
      const u = rng.random();
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(lo).toBeLessThan(0.01);
    expect(hi).toBeGreaterThan(0.99);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[rng.below(7)]++;
    expect(chiSquare(counts, new Array(7).fill(10000))).toBeLessThan(22.5); // df 6, p = 0.001
    expect(() => rng.below(0)).toThrow(/below/);
    expect(() => rng.setState({ s: [1, 2, 3] } as never)).toThrow(/four uint32/);
  });
});

describe('shuffle', () => {
  it('is a deterministic permutation per seed', () => {
    const p = randperm(100, new Rng(3));
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(randperm(100, new Rng(3)))).toEqual(Array.from(p));
    expect(Array.from(randperm(100, new Rng(4)))).not.toEqual(Array.from(p));
    const arr = ['a', 'b', 'c', 'd'];
    expect(shuffle(arr, new Rng(0))).toBe(arr);
  });

  it('makes all 6 orders of 3 items equally likely (chi-square)', () => {
    const rng = new Rng(11),
      counts = new Map<string, number>();
    for (let i = 0; i < 60000; i++) {
      const k = shuffle([0, 1, 2], rng).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    expect(chiSquare([...counts.values()], new Array(6).fill(10000))).toBeLessThan(20.5); // df 5, p = 0.001
  });
});

describe('batches', () => {
  it('splits with and without drop_last', () => {
    const idx = Int32Array.from({ length: 10 }, (_, i) => i);
    expect(batches(idx, 4).map((b) => Array.from(b))).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    expect(batches(idx, 4, true).map((b) => Array.from(b))).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(batches(idx, 5, true).length).toBe(2);
    expect(() => batches(idx, 0)).toThrow(/batchSize/);
  });
});

describe('WeightedRandomSampler', () => {
  it('draws each index with probability w_i / sum(w) (within 5 sigma), never a zero weight', () => {
    const w = [1, 2, 3, 4, 0];
    const draws = 100000;
    const idx = new WeightedRandomSampler(w, draws).sample(new Rng(7));
    expect(idx.length).toBe(draws);
    const counts = new Array(w.length).fill(0);
    for (const i of idx) counts[i]++;
    expect(counts[4]).toBe(0);
    for (let i = 0; i < 4; i++) {
      const p = w[i] / 10,
        sd = Math.sqrt(draws * p * (1 - p));
      expect(Math.abs(counts[i] - draws * p), `index ${i}: ${counts[i]}`).toBeLessThan(5 * sd);
    }
  });

  it('with inverse class frequencies, balances an imbalanced label set', () => {
    // 70% class 0, like CE24's "normal"; classes 1..4 share the rest unevenly.
    const labels: number[] = [];
    for (const [c, n] of [
      [0, 700],
      [1, 150],
      [2, 100],
      [3, 40],
      [4, 10],
    ])
      for (let i = 0; i < n; i++) labels.push(c);
    const w = inverseFrequencyWeights(labels);
    expect(w[0]).toBeCloseTo(1 / 700, 15);
    expect(w[999]).toBeCloseTo(1 / 10, 15);
    const draws = 50000;
    const idx = new WeightedRandomSampler(w, draws).sample(new Rng(1));
    const per = new Array(5).fill(0);
    for (const i of idx) per[labels[i]]++;
    const sd = Math.sqrt(draws * 0.2 * 0.8);
    for (let c = 0; c < 5; c++) expect(Math.abs(per[c] - draws / 5), `class ${c}: ${per[c]}`).toBeLessThan(5 * sd);
    expect(new WeightedRandomSampler(w).numSamples).toBe(1000); // default: one draw per sample
  });

  it('rejects bad weights', () => {
    expect(() => new WeightedRandomSampler([1, -1])).toThrow(/weights\[1\] = -1/);
    expect(() => new WeightedRandomSampler([0, 0])).toThrow(/sum to 0/);
    expect(() => new WeightedRandomSampler([1, NaN])).toThrow(/weights\[1\] = NaN/);
  });
});

describe('DataOrder', () => {
  const collect = (o: DataOrder, n: number) =>
    Array.from({ length: n }, () => {
      const b = o.nextBatch();
      return [b.epoch, b.step, ...b.indices];
    });

  it('covers every sample once per epoch with RandomSampler, new order each epoch', () => {
    const o = new DataOrder(new RandomSampler(10), { batchSize: 3, seed: 1 });
    expect(o.batchesPerEpoch).toBe(4);
    const e0 = [...o.epochBatches()],
      e1 = [...o.epochBatches()];
    expect(e0.map((b) => b.indices.length)).toEqual([3, 3, 3, 1]);
    const flat = (e: typeof e0) => e.flatMap((b) => Array.from(b.indices));
    expect(flat(e0).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(flat(e1)).not.toEqual(flat(e0));
    expect([e1[0].epoch, e1[0].step]).toEqual([1, 4]);
    expect(
      Array.from(new DataOrder(new SequentialSampler(5), { batchSize: 2, dropLast: true }).nextBatch().indices),
    ).toEqual([0, 1]);
  });

  it('is deterministic per seed', () => {
    const mk = (seed: number) => new DataOrder(new RandomSampler(20), { batchSize: 4, seed });
    expect(collect(mk(3), 12)).toEqual(collect(mk(3), 12));
    expect(collect(mk(3), 12)).not.toEqual(collect(mk(4), 12));
  });

  const samplers: [string, () => Sampler][] = [
    ['RandomSampler', () => new RandomSampler(11)],
    ['WeightedRandomSampler', () => new WeightedRandomSampler([5, 1, 1, 2, 3, 1, 1, 1, 4, 1, 1])],
  ];
  it.each(samplers)(
    '%s: a restored state continues the same order (mid-epoch, at a boundary, before start)',
    (_, make) => {
      for (const saveAfter of [0, 2, 3, 5, 7]) {
        const ref = new DataOrder(make(), { batchSize: 4, dropLast: true, seed: 42 });
        expect(ref.batchesPerEpoch).toBe(2);
        const expected = collect(ref, saveAfter + 6).slice(saveAfter);
        const a = new DataOrder(make(), { batchSize: 4, dropLast: true, seed: 42 });
        collect(a, saveAfter);
        const state = JSON.parse(JSON.stringify(a.stateDict())); // survives a checkpoint file
        const b = new DataOrder(make(), { batchSize: 4, dropLast: true, seed: 999 });
        collect(b, 3); // whatever it did before is replaced by the loaded state
        b.loadStateDict(state);
        expect(b.step).toBe(saveAfter);
        expect(collect(b, 6), `saved after ${saveAfter} batches`).toEqual(expected);
      }
    },
  );

  it('refuses a state from another configuration', () => {
    const a = new DataOrder(new RandomSampler(10), { batchSize: 3 });
    a.nextBatch();
    const b = new DataOrder(new RandomSampler(12), { batchSize: 3 });
    expect(() => b.loadStateDict(a.stateDict())).toThrow(/saved numSamples=10.*this order has numSamples=12/);
    expect(() => new DataOrder(new RandomSampler(3), { batchSize: 4, dropLast: true })).toThrow(/no batch/);
  });
});
