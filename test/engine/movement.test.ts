import { describe, it, expect, beforeAll } from 'vitest';
import { Tensor, tensor, tidy, backward, requiresGrad, sum, mul, add, device, Generator } from '../../engine/index.ts';
import { cat, stack, split, chunk, repeat, repeatInterleave } from '../../engine/ops/join.ts';
import { pad } from '../../engine/ops/pad.ts';
import {
  gather,
  indexSelect,
  scatterAdd,
  indexAdd,
  embedding,
  maskedFill,
  checkIndexRange,
} from '../../engine/ops/indexing.ts';
import { dropout } from '../../engine/ops/dropout.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, hostRandom, randomArray } from '../helpers.ts';

type Args = Record<string, unknown>;
const OPS: Record<string, (x: Tensor[], a: Args) => Tensor | Tensor[]> = {
  cat_dim0: (xs) => cat(xs, 0),
  cat_dim1: (xs) => cat(xs, 1),
  cat_dimneg1: (xs) => cat(xs, -1),
  stack_dim0: (xs) => stack(xs, 0),
  stack_dimneg1: (xs) => stack(xs, -1),
  split_size: ([x]) => split(x, 10, 0),
  split_sections: ([x]) => split(x, [1, 7, 57], -1),
  chunk_dim0: ([x]) => chunk(x, 3, 0),
  chunk_dim1: ([x]) => chunk(x, 4, 1),
  pad_constant_1d: ([x], a) => pad(x, a.pads as number[], 'constant', a.value as number),
  pad_constant_neg: ([x], a) => pad(x, a.pads as number[]),
  pad_constant_3dims: ([x], a) => pad(x, a.pads as number[], 'constant', -1),
  pad_replicate_3d: ([x], a) => pad(x, a.pads as number[], 'replicate'),
  pad_replicate_4d: ([x], a) => pad(x, a.pads as number[], 'replicate'),
  pad_replicate_4d_neg: ([x], a) => pad(x, a.pads as number[], 'replicate'),
  pad_replicate_5d: ([x], a) => pad(x, a.pads as number[], 'replicate'),
  pad_replicate_single: ([x], a) => pad(x, a.pads as number[], 'replicate'),
  gather_dim0: ([x, i]) => gather(x, 0, i),
  gather_dim1: ([x, i]) => gather(x, 1, i),
  gather_dimneg1: ([x, i]) => gather(x, -1, i),
  gather_size1: ([x, i]) => gather(x, 1, i),
  index_select_dim0: ([x, i]) => indexSelect(x, 0, i),
  index_select_dim1: ([x, i]) => indexSelect(x, 1, i),
  index_select_dimneg1: ([x, i]) => indexSelect(x, -1, i),
  embedding_small: ([w, i]) => embedding(w, i),
  embedding_65: ([w, i]) => embedding(w, i),
  embedding_vocab1: ([w, i]) => embedding(w, i),
  scatter_add_dim0: ([x, i, s]) => scatterAdd(x, 0, i, s),
  scatter_add_dim1: ([x, i, s]) => scatterAdd(x, 1, i, s),
  scatter_add_dimneg1: ([x, i, s]) => scatterAdd(x, -1, i, s),
  scatter_add_src_larger: ([x, i, s]) => scatterAdd(x, 1, i, s),
  index_add_dim0: ([x, i, s]) => indexAdd(x, 0, i, s),
  index_add_dim1: ([x, i, s]) => indexAdd(x, 1, i, s),
  index_add_dimneg1: ([x, i, s]) => indexAdd(x, -1, i, s),
  masked_fill_rows: ([x, m], a) => maskedFill(x, m, a.value as number),
  masked_fill_cols: ([x, m], a) => maskedFill(x, m, a.value as number),
  repeat_lead: ([x], a) => repeat(x, a.reps as number[]),
  repeat_2d: ([x], a) => repeat(x, a.reps as number[]),
  repeat_ones: ([x], a) => repeat(x, a.reps as number[]),
  repeat_interleave_dim0: ([x], a) => repeatInterleave(x, a.repeats as number, a.dim as number),
  repeat_interleave_dimneg1: ([x], a) => repeatInterleave(x, a.repeats as number, a.dim as number),
  repeat_interleave_65: ([x], a) => repeatInterleave(x, a.repeats as number, a.dim as number),
};

// The sorted scatter-add route, forced, on every index_add and index_select case.
const SORTED: Record<string, (x: Tensor[]) => Tensor> = {
  index_add_dim0: ([x, i, s]) => indexAdd(x, 0, i, s, 'sorted'),
  index_add_dim1: ([x, i, s]) => indexAdd(x, 1, i, s, 'sorted'),
  index_add_dimneg1: ([x, i, s]) => indexAdd(x, -1, i, s, 'sorted'),
};

const cases = loadGolden('movement');

describe('movement and indexing ops against PyTorch', () => {
  it('has a test for every fixture case', () => {
    expect(cases.map((c) => c.name).filter((n) => !OPS[n])).toEqual([]);
  });
  for (const c of cases) {
    it(c.name, async () => {
      await checkGolden(c, (xs) => OPS[c.name](xs, c.args));
    });
  }
  for (const c of cases.filter((k) => SORTED[k.name])) {
    it(`${c.name} (sorted route)`, async () => {
      await checkGolden(c, (xs) => SORTED[c.name](xs));
    });
  }
});

const ids = (values: number[], shape = [values.length]) => tensor(values, shape, 'i32');

describe('finite differences of every backward', () => {
  it('cat / stack', async () => {
    await checkFiniteDifferences((a, b) => cat([a, mul(b, 2), a], 1), [{ shape: [2, 3] }, { shape: [2, 5] }]);
    await checkFiniteDifferences((a, b) => stack([a, b], 1), [{ shape: [3, 2] }, { shape: [3, 2] }]);
  });
  it('split / chunk', async () => {
    await checkFiniteDifferences(
      (x) => {
        const [a, b, c] = split(x, [2, 1, 4], 1);
        return cat([mul(c, 3), a, b], 1);
      },
      [{ shape: [3, 7] }],
    );
    await checkFiniteDifferences(
      (x) => {
        const [a, b] = chunk(x, 2, 0);
        return mul(a, b);
      },
      [{ shape: [8, 3] }],
    );
  });
  it('pad constant and replicate (negative pads included)', async () => {
    await checkFiniteDifferences((x) => pad(x, [2, -1, -1, 3], 'constant', 0.25), [{ shape: [2, 4, 5] }]);
    await checkFiniteDifferences((x) => pad(x, [3, -1, 2, 2], 'replicate'), [{ shape: [1, 2, 3, 4] }]);
  });
  it('gather / indexSelect / embedding', async () => {
    await checkFiniteDifferences((x) => gather(x, 1, ids([0, 2, 2, 1, 1, 1], [2, 3])), [{ shape: [2, 4] }]);
    await checkFiniteDifferences((x) => indexSelect(x, 0, ids([3, 0, 3, 3])), [{ shape: [5, 3] }]);
    await checkFiniteDifferences((w) => embedding(w, ids([1, 1, 4, 0, 1, 4], [3, 2])), [{ shape: [6, 3] }]);
  });
  it('scatterAdd (src larger than index) / indexAdd both routes', async () => {
    await checkFiniteDifferences(
      (x, s) => scatterAdd(x, 0, ids([0, 2, 2, 2, 1, 0], [2, 3]), s),
      [{ shape: [3, 4] }, { shape: [3, 3] }],
    );
    for (const route of ['loop', 'sorted'] as const) {
      await checkFiniteDifferences(
        (x, s) => indexAdd(x, 1, ids([4, 0, 4, 4, 2]), s, route),
        [{ shape: [2, 5] }, { shape: [2, 5] }],
      );
    }
  });
  it('maskedFill / repeat / repeatInterleave / dropout', async () => {
    await checkFiniteDifferences((x) => maskedFill(x, tensor([1, 0, 0, 1], [4]), 3), [{ shape: [3, 4] }]);
    await checkFiniteDifferences((x) => repeat(x, [2, 1, 3]), [{ shape: [2, 3] }]);
    await checkFiniteDifferences((x) => repeatInterleave(x, 3, 0), [{ shape: [2, 3] }]);
    await checkFiniteDifferences((x) => dropout(x, 0.4, true, new Generator(11)), [{ shape: [5, 7] }]);
  });
});

describe('deterministic scatter-add', () => {
  // Ids with heavy repeats over a vocabulary large enough for 'auto' to pick the sorted route.
  const V = 300,
    D = 16,
    N = 600;
  const r = hostRandom(3);
  const idList = Array.from({ length: N }, (_, k) => (k % 5 === 0 ? 7 : Math.floor(r() * V)));
  const weight = randomArray(V * D, 4);
  const dyData = randomArray(N * D, 5);

  async function embeddingGrad(): Promise<Float32Array> {
    const w = requiresGrad(tensor(weight, [V, D]));
    tidy(() => backward(embedding(w, ids(idList, [20, 30])), tensor(dyData, [20, 30, D])));
    const g = (await w.grad!.data()) as Float32Array;
    w.grad!.dispose();
    w.dispose();
    return g;
  }

  it('embedding backward gives bit-identical gradients run to run', async () => {
    const a = new Uint32Array((await embeddingGrad()).buffer);
    const b = new Uint32Array((await embeddingGrad()).buffer);
    expect(b).toEqual(a);
    // And it is the right sum: row 7 collects every fifth position plus its random hits.
    const g = new Float32Array(a.buffer);
    const want = new Float64Array(D);
    idList.forEach((v, k) => {
      if (v === 7) for (let d = 0; d < D; d++) want[d] += dyData[k * D + d];
    });
    for (let d = 0; d < D; d++) expect(Math.abs(g[7 * D + d] - want[d])).toBeLessThan(1e-4);
  });

  it('loop and sorted routes agree bit for bit (and do not leak)', async () => {
    const before = device().liveBuffers;
    const [a, b] = tidy(() => {
      const x = tensor(randomArray(3 * V * 5, 6), [3, V, 5]);
      const src = tensor(randomArray(3 * N * 5, 7), [3, N, 5]);
      const index = ids(idList);
      return [indexAdd(x, 1, index, src, 'loop'), indexAdd(x, 1, index, src, 'sorted')];
    });
    expect(new Uint32Array((await b.data()).buffer)).toEqual(new Uint32Array((await a.data()).buffer));
    a.dispose();
    b.dispose();
    expect(device().liveBuffers).toBe(before);
  });
});

describe('out-of-range indices', () => {
  it('gather reads 0, scatter-adds skip, no route touches memory out of bounds', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const bad = ids([2, -1, 3, 0], [1, 4]);
    expect(Array.from(await gather(x, 1, ids([2, -1, 3, 0, 0, 1], [2, 3])).data())).toEqual([3, 0, 0, 4, 4, 5]);
    expect(Array.from(await indexSelect(x, 1, ids([5, 1])).data())).toEqual([0, 2, 0, 5]);
    expect(Array.from(await scatterAdd(x, 1, bad, tensor([10, 20, 30, 40], [1, 4])).data())).toEqual([
      41, 2, 13, 4, 5, 6,
    ]);
    for (const route of ['loop', 'sorted'] as const) {
      const y = indexAdd(x, 1, ids([2, -7, 3, 0]), tensor([10, 20, 30, 40, 50, 60, 70, 80], [2, 4]), route);
      expect(Array.from(await y.data()), route).toEqual([41, 2, 13, 84, 5, 56]);
    }
  });

  it('checkIndexRange names the op, the value and the valid range', async () => {
    await expect(checkIndexRange('embedding', ids([0, 4, 5, 1]), 5)).rejects.toThrow(
      /embedding: index 5 at flat position 2 .*\[0, 5\)/,
    );
    await expect(checkIndexRange('gather', ids([-1]), 3)).rejects.toThrow(/gather: index -1/);
    await expect(checkIndexRange('gather', ids([0, 1, 2]), 3)).resolves.toBeUndefined();
    await expect(checkIndexRange('gather', tensor([0], [1]), 3)).rejects.toThrow(
      /gather: index \[1\] has dtype f32, expected i32/,
    );
  });
});

describe('dropout', () => {
  const n = 100_000;
  it('keeps the mean (inverted scaling) and drops about p of the elements', async () => {
    const y = dropout(tensor(new Array(n).fill(1), [n]), 0.3, true, new Generator(1));
    const d = await y.data();
    let total = 0,
      zeros = 0,
      other = 0;
    for (const v of d) {
      total += v;
      if (v === 0) zeros++;
      else if (Math.abs(v - 1 / 0.7) > 1e-6) other++;
    }
    expect(other, 'kept elements not scaled by 1 / (1 - p)').toBe(0);
    // Binomial(n, 0.7) / 0.7 / n has std sqrt(0.3 / (0.7 n)) ~ 0.0021: allow 5 sigma.
    expect(Math.abs(total / n - 1)).toBeLessThan(5 * Math.sqrt(0.3 / (0.7 * n)));
    expect(Math.abs(zeros / n - 0.3)).toBeLessThan(5 * Math.sqrt((0.3 * 0.7) / n));
  });

  it('the same seed gives the same mask; the generator advances between draws', async () => {
    const x = tensor(randomArray(4096, 2), [64, 64]);
    const a = await dropout(x, 0.5, true, new Generator(9)).data();
    const b = await dropout(x, 0.5, true, new Generator(9)).data();
    expect(Array.from(b)).toEqual(Array.from(a));
    const g = new Generator(9);
    dropout(x, 0.5, true, g);
    const c = await dropout(x, 0.5, true, g).data();
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });

  it('backward uses the forward mask', async () => {
    const x = requiresGrad(tensor(randomArray(999, 3, 0.5, 1), [9, 111]));
    const y = dropout(x, 0.25, true, new Generator(4));
    backward(sum(y));
    const yv = await y.data();
    const gv = await x.grad!.data();
    let kept = 0;
    yv.forEach((v, i) => {
      const want = v === 0 ? 0 : 1 / 0.75;
      if (v !== 0) kept++;
      expect(Math.abs(gv[i] - want)).toBeLessThan(1e-6);
    });
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(999);
  });

  it('is the identity when not training or p = 0, zero at p = 1', async () => {
    const x = tensor([1, -2, 3], [3]);
    expect(dropout(x, 0.5, false)).toBe(x);
    expect(dropout(x, 0, true)).toBe(x);
    expect(Array.from(await dropout(x, 1, true).data())).toEqual([0, -0, 0]);
    expect(() => dropout(x, 1.5, true)).toThrow(/dropout: probability p must lie in \[0, 1\], got 1.5/);
  });
});

describe('bad inputs name the op and the shapes', () => {
  let a: Tensor, b: Tensor;
  beforeAll(() => {
    a = tensor(randomArray(6, 1), [2, 3]);
    b = tensor(randomArray(8, 2), [2, 4]);
  });
  it('join ops', () => {
    expect(() => cat([a, b], 0)).toThrow(/cat: shapes \[2, 3\], \[2, 4\] must match except in dim 0/);
    expect(() => cat([a, tensor([1, 2, 3], [1, 3], 'i32')], 0)).toThrow(/cat: dtypes differ \(f32, i32\)/);
    expect(() => stack([a, b])).toThrow(/stack: all shapes must be equal, got \[2, 3\], \[2, 4\]/);
    expect(() => split(a, [1, 1], 1)).toThrow(/split: sections \[1,1\] must be .* summing to 3 \(dim 1 of \[2, 3\]\)/);
    expect(() => chunk(a, 0)).toThrow(/chunk: chunks must be a positive integer/);
    expect(() => repeat(a, [2])).toThrow(/repeat: reps \[2\] must be .* \[2, 3\]/);
  });
  it('pad', () => {
    expect(() => pad(a, [1, 2, 3])).toThrow(/pad: pads \[1,2,3\] must be \(left, right\) pairs .* \[2, 3\]/);
    expect(() => pad(a, [-2, -2])).toThrow(/pad: pads \[-2,-2\] shrink dim 1 of \[2, 3\] below zero/);
  });
  it('indexing ops', () => {
    const f = tensor([0, 1], [2]);
    expect(() => gather(a, 1, tensor([0, 1, 0, 1], [2, 2]))).toThrow(
      /gather: index \[2, 2\] has dtype f32, expected i32/,
    );
    expect(() => indexSelect(a, 0, f)).toThrow(/indexSelect: index \[2\] has dtype f32, expected i32/);
    expect(() => embedding(a, f)).toThrow(/embedding: index \[2\] has dtype f32, expected i32/);
    expect(() => embedding(tensor([1, 2], [2]), ids([0]))).toThrow(
      /embedding: weight must be \[num_embeddings, embedding_dim\], got \[2\]/,
    );
    expect(() => gather(a, 0, ids([0, 1, 0, 1, 0, 1, 0, 1], [2, 4]))).toThrow(
      /gather: index \[2, 4\] must have the rank of input \[2, 3\]/,
    );
    expect(() => gather(a, 2, ids([0], [1, 1]))).toThrow(/gather: dim 2 is out of range for shape \[2, 3\]/);
    expect(() => scatterAdd(a, 0, ids([0, 1], [1, 2]), tensor([1], [1, 1]))).toThrow(
      /scatterAdd: index \[1, 2\] must .* src \[1, 1\]/,
    );
    expect(() => indexAdd(a, 1, ids([0, 1]), b)).toThrow(/indexAdd: src \[2, 4\] must be \[2, 2\]/);
    expect(() => maskedFill(a, tensor([1, 0], [2, 1, 1]), 0)).toThrow(
      /maskedFill: mask \[2, 1, 1\] must broadcast to the input's shape \[2, 3\]/,
    );
  });
});

describe('gradients flow through composites', () => {
  it('embedding gradient accumulates with another use of the weight', async () => {
    const w = requiresGrad(tensor([1, 2, 3, 4], [2, 2]));
    backward(add(sum(embedding(w, ids([1, 1, 0], [3]))), sum(mul(w, 2))));
    expect(Array.from(await w.grad!.data())).toEqual([3, 3, 4, 4]);
  });
});

describe('integer tensors', () => {
  it('cat, pad, gather and repeat keep i32 values exact', async () => {
    const a = tensor([1, 2, 3, 4], [2, 2], 'i32');
    const b = tensor([-5, 2147483647], [2, 1], 'i32');
    const c = cat([a, b], 1);
    expect(c.dtype).toBe('i32');
    expect(Array.from(await c.data())).toEqual([1, 2, -5, 3, 4, 2147483647]);
    expect(Array.from(await pad(a, [1, 0, 0, 1], 'constant', -1).data())).toEqual([-1, 1, 2, -1, 3, 4, -1, -1, -1]);
    expect(Array.from(await pad(a, [0, 1], 'replicate').data())).toEqual([1, 2, 2, 3, 4, 4]);
    expect(Array.from(await gather(a, 0, ids([1, 0], [1, 2])).data())).toEqual([3, 2]);
    expect(Array.from(await repeat(b, [1, 2]).data())).toEqual([-5, -5, 2147483647, 2147483647]);
  });
});
