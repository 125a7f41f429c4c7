// Fused softmax / log-softmax / layer norm / cross-entropy kernels, the other losses and
// argmax/argmin: PyTorch golden cases (forward and backward), finite differences of every
// backward on the device, edge cases (masked rows, NaN, out-of-range targets), input errors.
import { describe, it, expect, afterEach } from 'vitest';
import { Tensor, tensor, tidy, noGrad, device, backward, requiresGrad, sum, add, mul } from '../../engine/index.ts';
import { softmax, logSoftmax, useSoftmaxKernel, type SoftmaxKernel } from '../../engine/ops/softmax.ts';
import { layerNorm, useLayerNormKernel, type LayerNormKernel } from '../../engine/ops/layer-norm.ts';
import { argmax, argmin } from '../../engine/ops/arg-reduce.ts';
import {
  crossEntropy,
  validateIndices,
  binaryCrossEntropyWithLogits,
  binaryCrossEntropy,
  mseLoss,
  l1Loss,
  cosineSimilarity,
  type Reduction,
} from '../../engine/ops/losses.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, randomArray, expectClose } from '../helpers.ts';

type Args = Record<string, unknown>;
const vec = (v: unknown): Tensor | undefined => (Array.isArray(v) ? tensor(v as number[], [v.length]) : undefined);
const red = (a: Args): Reduction | undefined => a.reduction as Reduction | undefined;

const OPS: Record<string, (xs: Tensor[], a: Args) => Tensor> = {
  softmax: ([x], a) => softmax(x, a.dim as number),
  log_softmax: ([x], a) => logSoftmax(x, a.dim as number),
  layer_norm: ([x, ...wb], a) => {
    const affine = a.affine as string;
    const w = affine === 'both' || affine === 'weight' ? wb[0] : undefined;
    const b = affine === 'both' ? wb[1] : affine === 'bias' ? wb[0] : undefined;
    return layerNorm(x, a.normalized_shape as number[], w, b, a.eps as number);
  },
  cross_entropy: ([x, t], a) =>
    crossEntropy(x, t, {
      ignoreIndex: a.ignore_index as number | undefined,
      labelSmoothing: a.label_smoothing as number | undefined,
      reduction: red(a),
      weight: vec(a.weight),
    }),
  bce_with_logits: ([x, y], a) =>
    binaryCrossEntropyWithLogits(x, y, { posWeight: vec(a.pos_weight), weight: vec(a.weight), reduction: red(a) }),
  bce: ([p, y], a) => binaryCrossEntropy(p, y ?? vec(a.target)!, { weight: vec(a.weight), reduction: red(a) }),
  mse: ([x, y], a) => mseLoss(x, y, red(a)),
  l1: ([x, y], a) => l1Loss(x, y, red(a)),
  cosine_similarity: ([x, y], a) => cosineSimilarity(x, y, a.dim as number, a.eps as number | undefined),
  argmax: ([x], a) => argmax(x, a.dim as number, a.keepdim as boolean),
  argmin: ([x], a) => argmin(x, a.dim as number, a.keepdim as boolean),
};

describe('nn ops against PyTorch', () => {
  for (const c of loadGolden('nn_ops')) {
    const op = c.name.split('/')[0];
    // Gradients of the clamped BCE reach 1e12 (1 / max(p (1 - p), 1e-12)): relative tolerance only.
    const tol = c.name === 'bce/clamped_logs' ? { gradAtol: 0, gradRtol: 1e-4 } : {};
    it(c.name, async () => {
      await checkGolden(c, (xs) => OPS[op](xs, c.args), tol);
    });
  }
});

describe('layer norm: the per-row and the per-workgroup kernels', () => {
  afterEach(() => useLayerNormKernel(null));
  for (const kernel of ['rows', 'workgroup'] as const) {
    for (const c of loadGolden('nn_ops').filter((c) => c.name.startsWith('layer_norm'))) {
      it(`${kernel}: ${c.name} against PyTorch`, async () => {
        useLayerNormKernel(kernel); // rows not a multiple of 4 long take the workgroup kernel
        await checkGolden(c, (xs) => OPS.layer_norm(xs, c.args));
      });
    }
    it(`${kernel}: finite differences, rows of 8`, async () => {
      useLayerNormKernel(kernel);
      await checkFiniteDifferences(
        (x, w, b) => layerNorm(x, [8], w, b),
        [{ shape: [3, 8], low: -2, high: 2 }, { shape: [8] }, { shape: [8] }],
      );
    });
  }
  it('agree on [300, 192] rows (EVA-02-Ti width), forward and backward', async () => {
    const run = async (kernel: LayerNormKernel) => {
      useLayerNormKernel(kernel);
      const out = tidy(() => {
        const x = requiresGrad(
          tensor(
            randomArray(300 * 192, 8).map((v) => 3 * v + 1),
            [300, 192],
          ),
        );
        const w = requiresGrad(tensor(randomArray(192, 9), [192]));
        const y = layerNorm(x, [192], w);
        backward(sum(mul(y, tensor(randomArray(y.size, 10), y.shape))));
        return [y, x.grad!, w.grad!].map((t) => t.keep());
      });
      const data = await Promise.all(out.map((t) => t.data()));
      out.forEach((t) => t.dispose());
      return data;
    };
    const [rows, wg] = [await run('rows'), await run('workgroup')];
    ['y', 'dx', 'dweight'].forEach((name, i) => expectClose(rows[i], wg[i], name, 1e-5, 1e-4));
  });
});

describe('softmax and log-softmax: the per-row and the per-workgroup kernels', () => {
  afterEach(() => useSoftmaxKernel(null));
  for (const kernel of ['rows', 'workgroup'] as const) {
    for (const c of loadGolden('nn_ops').filter((c) => /^(log_)?softmax\//.test(c.name))) {
      it(`${kernel}: ${c.name} against PyTorch`, async () => {
        useSoftmaxKernel(kernel);
        await checkGolden(c, (xs) => OPS[c.name.split('/')[0]](xs, c.args));
      });
    }
    it(`${kernel}: finite differences over a middle axis`, async () => {
      useSoftmaxKernel(kernel);
      await checkFiniteDifferences((x) => softmax(x, 1), [{ shape: [3, 5, 4], low: -2, high: 2 }]);
      await checkFiniteDifferences((x) => logSoftmax(x, 1), [{ shape: [3, 5, 4], low: -2, high: 2 }]);
    });
  }
  for (const [shape, dim] of [
    [[300, 257], -1], // attention scores
    [[4, 50, 70], 1], // a strided axis
  ] as [number[], number][]) {
    it(`agree on ${JSON.stringify(shape)} along ${dim}, forward and backward`, async () => {
      const run = async (kernel: SoftmaxKernel, fn: typeof softmax) => {
        useSoftmaxKernel(kernel);
        const n = shape.reduce((a, b) => a * b, 1);
        const out = tidy(() => {
          const x = requiresGrad(
            tensor(
              randomArray(n, 11).map((v) => 8 * v),
              shape,
            ),
          );
          const y = fn(x, dim);
          backward(sum(mul(y, tensor(randomArray(n, 12), shape))));
          return [y, x.grad!].map((t) => t.keep());
        });
        const data = await Promise.all(out.map((t) => t.data()));
        out.forEach((t) => t.dispose());
        return data;
      };
      for (const fn of [softmax, logSoftmax]) {
        const [rows, wg] = [await run('rows', fn), await run('workgroup', fn)];
        ['y', 'dx'].forEach((name, i) => expectClose(rows[i], wg[i], `${fn.name} ${name}`, 1e-6, 1e-5));
      }
    });
  }
});

describe('nn ops: finite differences of every backward', () => {
  it('softmax over a middle axis', async () => {
    await checkFiniteDifferences((x) => softmax(x, 1), [{ shape: [3, 5, 4], low: -2, high: 2 }]);
  });
  it('logSoftmax over axis 0', async () => {
    await checkFiniteDifferences((x) => logSoftmax(x, 0), [{ shape: [6, 4], low: -2, high: 2 }]);
  });
  it('layerNorm with weight and bias', async () => {
    await checkFiniteDifferences(
      (x, w, b) => layerNorm(x, [6], w, b),
      [{ shape: [3, 6], low: -2, high: 2 }, { shape: [6], low: 0.5, high: 1.5 }, { shape: [6] }],
    );
  });
  it('layerNorm weight and bias gradients summed over several chunks of rows', async () => {
    await checkFiniteDifferences(
      (x, w, b) => layerNorm(x, [5], w, b),
      [{ shape: [130, 5], low: -2, high: 2 }, { shape: [5], low: 0.5, high: 1.5 }, { shape: [5] }],
    );
  });
  it('layerNorm over two dims without affine', async () => {
    await checkFiniteDifferences((x) => layerNorm(x, [3, 4]), [{ shape: [2, 3, 4], low: -2, high: 2 }]);
  });
  it('crossEntropy with class indices, weights, smoothing and an ignored row', async () => {
    const t = tensor([2, -100, 0, 4, 1], [5], 'i32');
    const w = tensor([0.5, 1, 2, 0.25, 1.5], [5]);
    await checkFiniteDifferences(
      (x) => crossEntropy(x, t, { weight: w, labelSmoothing: 0.1, reduction: 'none' }),
      [{ shape: [5, 5], low: -2, high: 2 }],
    );
    t.dispose();
    w.dispose();
  });
  it('crossEntropy with probability targets over [N, C, H]', async () => {
    const w = tensor([0.5, 1, 2], [3]);
    await checkFiniteDifferences(
      (x, p) => crossEntropy(x, p, { weight: w, labelSmoothing: 0.2 }),
      [
        { shape: [2, 3, 4], low: -2, high: 2 },
        { shape: [2, 3, 4], low: 0, high: 1 },
      ],
    );
    w.dispose();
  });
  it('binaryCrossEntropyWithLogits with posWeight', async () => {
    const pw = tensor([0.5, 2, 3], [3]);
    await checkFiniteDifferences(
      (x, y) => binaryCrossEntropyWithLogits(x, y, { posWeight: pw, reduction: 'sum' }),
      [
        { shape: [4, 3], low: -3, high: 3 },
        { shape: [4, 3], low: 0, high: 1 },
      ],
    );
    pw.dispose();
  });
  it('binaryCrossEntropy', async () => {
    await checkFiniteDifferences(
      (p, y) => binaryCrossEntropy(p, y, { reduction: 'none' }),
      [
        { shape: [7], low: 0.1, high: 0.9 },
        { shape: [7], low: 0, high: 1 },
      ],
      { h: 1e-3 },
    );
  });
  it('mseLoss and l1Loss', async () => {
    await checkFiniteDifferences((a, b) => mseLoss(a, b), [{ shape: [3, 5] }, { shape: [3, 5] }]);
    await checkFiniteDifferences((a, b) => l1Loss(a, b, 'sum'), [{ shape: [9] }, { shape: [9] }], { h: 1e-3 });
  });
  it('cosineSimilarity with broadcasting', async () => {
    await checkFiniteDifferences((a, b) => cosineSimilarity(a, b), [{ shape: [3, 1, 5] }, { shape: [4, 5] }]);
  });
});

describe('nn ops: edge cases', () => {
  it('softmax gives masked (-inf) entries zero weight', async () => {
    const y = softmax(tensor([0, -Infinity, 1, -Infinity, -Infinity, 2], [2, 3]));
    const e = Math.E;
    const got = Array.from(await y.data());
    const want = [1 / (1 + e), 0, e / (1 + e), 0, 0, 1];
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    y.dispose();
  });

  it('crossEntropy writes NaN for an out-of-range target (no readback), and validateIndices throws', async () => {
    const x = requiresGrad(tensor(randomArray(12, 3), [3, 4]));
    const t = tensor([0, 9, -100], [3], 'i32');
    const loss = tidy(() => {
      const l = crossEntropy(x, t, { reduction: 'none' });
      backward(sum(l));
      return l;
    });
    const l = Array.from(await loss.data());
    expect(Number.isFinite(l[0])).toBe(true);
    expect(l[1]).toBeNaN();
    expect(l[2]).toBe(0);
    const g = Array.from(await x.grad!.data());
    expect(g.slice(0, 4).every(Number.isFinite)).toBe(true);
    expect(g.slice(4, 8).every(Number.isNaN)).toBe(true);
    expect(g.slice(8)).toEqual([0, 0, 0, 0]);
    await expect(validateIndices(t, 4)).rejects.toThrow(
      /crossEntropy: target index 9 at flat position 1 of target \[3\] is out of bounds for 4 classes/,
    );
    await expect(validateIndices(t, 10)).resolves.toBeUndefined();
    await expect(validateIndices(tensor([0, -1], [2], 'i32'), 4, -100, 'DataLoader')).rejects.toThrow(
      /DataLoader: target index -1/,
    );
    for (const z of [x.grad!, x, t, loss]) z.dispose();
  });

  it("crossEntropy 'mean' over rows that are all ignored is NaN, as PyTorch", async () => {
    const l = tidy(() => crossEntropy(tensor([1, 2, 3, 4], [2, 2]), tensor([-100, -100], [2], 'i32')));
    expect(await l.item()).toBeNaN();
    l.dispose();
  });

  it('softmax and argmax over more rows than one grid dimension holds (65535 workgroups)', async () => {
    const n = 70_000;
    const x = tensor(
      Array.from({ length: 2 * n }, (_, i) => (i % 2 ? Math.log(3) : 0)),
      [n, 2],
    );
    const [y, a] = [softmax(x), argmax(x, 1)];
    const yd = await y.data();
    expect(yd[2 * n - 2]).toBeCloseTo(0.25, 6);
    expect(yd[2 * n - 1]).toBeCloseTo(0.75, 6);
    expect((await a.data()).every((v) => v === 1)).toBe(true);
    for (const z of [x, y, a]) z.dispose();
  });

  it('argmax/argmin take the first NaN, like PyTorch', async () => {
    const x = tensor([1, NaN, 3, NaN, 5, -2, 5, -2], [2, 4]);
    const [a, b] = [argmax(x, 1), argmin(x, 1)];
    expect(Array.from(await a.data())).toEqual([1, 0]);
    expect(Array.from(await b.data())).toEqual([1, 1]);
    for (const z of [x, a, b]) z.dispose();
  });

  it('argmax over i32 and a 0-d tensor', async () => {
    const x = tensor([3, 7, 7, -1], [4], 'i32');
    const s = tensor([2.5], []);
    const [a, b] = [argmax(x, 0), argmin(s, 0)];
    expect(await a.item()).toBe(1);
    expect([...b.shape]).toEqual([]);
    expect(await b.item()).toBe(0);
    for (const z of [x, s, a, b]) z.dispose();
  });

  it('returns every buffer after forward and backward; layerNorm keeps no statistics without a graph', async () => {
    const dev = device();
    const x = requiresGrad(tensor(randomArray(24, 5), [4, 6]));
    const w = requiresGrad(tensor(randomArray(6, 6), [6]));
    const t = tensor([1, 0, 5, -100], [4], 'i32');
    const before = dev.liveBuffers;
    tidy(() => {
      const terms = [
        sum(softmax(x, 0)),
        sum(logSoftmax(x)),
        sum(layerNorm(x, [6], w, w)),
        crossEntropy(x, t, { weight: w, labelSmoothing: 0.1 }),
        crossEntropy(x, softmax(x)),
        binaryCrossEntropyWithLogits(x, softmax(x)),
        binaryCrossEntropy(softmax(x), softmax(x)),
        sum(cosineSimilarity(x, w)),
        mseLoss(x, x),
        l1Loss(x, softmax(x)),
      ];
      backward(terms.reduce((a, b) => add(a, b)));
    });
    x.grad!.dispose();
    w.grad!.dispose();
    x.grad = null;
    w.grad = null;
    expect(dev.liveBuffers).toBe(before);
    const y = noGrad(() => layerNorm(x, [6], w));
    expect(dev.liveBuffers).toBe(before + 1);
    for (const z of [y, x, w, t]) z.dispose();
  });
});

describe('nn ops: input errors name the op and the shapes', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['softmax dtype', () => softmax(tensor([1, 2], [2], 'i32')), /softmax: input \[2\] has dtype i32, expected f32/],
    [
      'softmax axis',
      () => logSoftmax(tensor([1, 2], [1, 2]), 2),
      /logSoftmax: axis 2 is out of range for shape \[1, 2\]/,
    ],
    [
      'layerNorm shape',
      () => layerNorm(tensor([1, 2, 3, 4, 5, 6], [2, 3]), [4]),
      /layerNorm: input \[2, 3\] with normalizedShape \[4\]/,
    ],
    [
      'layerNorm weight',
      () => layerNorm(tensor([1, 2, 3, 4, 5, 6], [2, 3]), [3], tensor([1, 1], [2])),
      /layerNorm: weight has shape \[2\], expected normalizedShape \[3\]/,
    ],
    [
      'crossEntropy target shape',
      () => crossEntropy(tensor(randomArray(20, 1), [4, 5]), tensor([0, 1, 2], [3], 'i32')),
      /crossEntropy: target \[3\] \(i32 class indices\) must have shape \[4\] for logits \[4, 5\]/,
    ],
    [
      'crossEntropy target dtype',
      () => crossEntropy(tensor(randomArray(20, 1), [4, 5]), tensor([0, 1, 2, 3], [4])),
      new RegExp(
        String.raw`crossEntropy: target \[4\] \(f32\) does not fit logits \[4, 5\]: expected ` +
          String.raw`i32 class indices of shape \[4\] or f32 probabilities of shape \[4, ` +
          String.raw`5\]`,
      ),
    ],
    [
      'crossEntropy u32 target',
      () => crossEntropy(tensor(randomArray(20, 1), [4, 5]), tensor([0, 1, 2, 3], [4], 'u32')),
      /crossEntropy: target \[4\] \(u32\) does not fit logits \[4, 5\]/,
    ],
    [
      'crossEntropy weight',
      () =>
        crossEntropy(tensor(randomArray(20, 1), [4, 5]), tensor([0, 1, 2, 3], [4], 'i32'), {
          weight: tensor([1, 1, 1, 1], [4]),
        }),
      /crossEntropy: weight has shape \[4\], expected \[5\]/,
    ],
    [
      'crossEntropy logits dtype',
      () => crossEntropy(tensor([1, 2], [1, 2], 'i32'), tensor([0], [1], 'i32')),
      /crossEntropy: logits \[1, 2\] has dtype i32, expected f32/,
    ],
    [
      'bceWithLogits shapes',
      () => binaryCrossEntropyWithLogits(tensor([1, 2], [2]), tensor([1, 0, 1], [3])),
      /binaryCrossEntropyWithLogits: input \[2\] and target \[3\] must have the same shape/,
    ],
    [
      'bce weight',
      () => binaryCrossEntropy(tensor([0.5, 0.5], [2]), tensor([1, 0], [2]), { weight: tensor([1, 1, 1], [3]) }),
      /binaryCrossEntropy: shapes \[2\] and \[3\] cannot be broadcast together/,
    ],
    [
      'mseLoss shapes',
      () => mseLoss(tensor([1, 2], [2, 1]), tensor([1, 2], [1, 2])),
      /mseLoss: input \[2, 1\] and target \[1, 2\] must have the same shape/,
    ],
    [
      'l1Loss dtype',
      () => l1Loss(tensor([1, 2], [2], 'i32'), tensor([1, 2], [2])),
      /l1Loss: input \[2\] has dtype i32, expected f32/,
    ],
    [
      'cosineSimilarity shapes',
      () => cosineSimilarity(tensor(randomArray(6, 1), [2, 3]), tensor(randomArray(4, 1), [2, 2])),
      /cosineSimilarity: shapes \[2, 3\] and \[2, 2\] cannot be broadcast together/,
    ],
    ['softmax 0-d dim', () => softmax(tensor([1], []), 1), /softmax: dim 1 is out of range for a 0-d tensor/],
    ['argmax dim', () => argmax(tensor([1, 2], [2]), 1), /argmax: axis 1 is out of range for shape \[2\]/],
  ];
  for (const [name, fn, msg] of cases)
    it(name, () => {
      tidy(() => {
        expect(fn).toThrow(msg);
      });
    });
});
