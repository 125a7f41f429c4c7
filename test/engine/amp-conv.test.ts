// Convolutions under autocast: every conv kernel the dispatcher can pick (conv2d direct, blocked,
// blocked-row, tiled; the transposed gather, direct and blocked; the weight gradient with and
// without split-K and its sum) computes in f16 operands with f32 accumulation, forward and
// backward, and the f32 path is untouched when autocast is off or shader-f16 is absent.
//
// Tolerance, derived: the inputs (x, weight, bias, the output gradient) are f16 values, so casting
// them to f16 is exact and an f16 kernel forms the same f32 products and sums, in the same order,
// as the f32 kernel on the same values; the one difference is the final rounding of each output to
// f16 (round to nearest: at most half an f16 ulp, 2^-11 relative for normal values and 2^-25
// absolute in the subnormal range). So |y16 - y32| <= 2^-11 |y32| + 2^-25 for outputs, dx and dW.
// db is a sum of dy in f32 in both paths: equal. Every f16 output must itself be an f16 value.
import { describe, it, expect, afterAll } from 'vitest';
import { Tensor, tensor, tidy, noGrad, backward, requiresGrad, device, autocast } from '../../engine/index.ts';
import {
  conv2d,
  conv1d,
  convTranspose2d,
  useConvKernel,
  type Conv2dOptions,
  type ConvTranspose2dOptions,
} from '../../engine/ops/conv.ts';
import { CONV_KERNELS } from '../../engine/ops/conv-kernels.ts';
import { fromHalf, toHalf } from '../../engine/f16.ts';
import { randomArray, expectClose } from '../helpers.ts';

const half = (xs: ArrayLike<number>) => fromHalf(toHalf(xs));
const RTOL = 2 ** -11,
  ATOL = 2 ** -25;
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

afterAll(() => useConvKernel(null));

interface Run {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array | null;
}

type Op = (x: Tensor, w: Tensor, b: Tensor | null) => Tensor;

/** Forward and backward of `op` on f16-valued inputs, in f32 or under autocast. */
async function run(op: Op, xs: number[], ws: number[], bs: number[] | null, amp: boolean, seed: number) {
  const x = requiresGrad(tensor(half(randomArray(numel(xs), seed)), xs));
  const w = requiresGrad(tensor(half(randomArray(numel(ws), seed + 1, -0.5, 0.5)), ws));
  const b = bs ? requiresGrad(tensor(half(randomArray(numel(bs), seed + 2)), bs)) : null;
  const y = tidy(() => {
    const out = autocast(() => op(x, w, b), { enabled: amp });
    const cot = tensor(half(randomArray(out.size, seed + 3)), out.shape);
    backward(out, cot);
    cot.dispose();
    return out;
  });
  expect(y.dtype).toBe('f32');
  for (const t of [x, w, b]) if (t) expect(t.grad!.dtype, 'parameter gradients are f32').toBe('f32');
  const r: Run = {
    y: (await y.data()) as Float32Array,
    dx: (await x.grad!.data()) as Float32Array,
    dw: (await w.grad!.data()) as Float32Array,
    db: b ? ((await b.grad!.data()) as Float32Array) : null,
  };
  for (const t of [x, w, b, y]) {
    t?.grad?.dispose();
    t?.dispose();
  }
  return r;
}

/** The f16 run equals the f32 run on the same f16 values up to one f16 rounding per output. */
async function checkHalf(what: string, op: Op, xs: number[], ws: number[], bs: number[] | null, seed: number) {
  const f32 = await run(op, xs, ws, bs, false, seed);
  const f16 = await run(op, xs, ws, bs, true, seed);
  for (const k of ['y', 'dx', 'dw'] as const) {
    expectClose(f16[k], f32[k], `${what}: ${k}`, ATOL, RTOL);
    expect(Array.from(f16[k]), `${what}: every ${k} is an f16 value`).toEqual(Array.from(half(f16[k])));
    // The f32 run keeps f32 precision: some value is not an f16 value (so the two paths differ).
    expect(Array.from(f32[k]), `${what}: the f32 ${k} is not f16-rounded`).not.toEqual(Array.from(half(f32[k])));
  }
  if (bs) expect(Array.from(f16.db!), `${what}: db`).toEqual(Array.from(f32.db!));
}

// Each forward geometry also exercises the backward: stride 1 takes dx through the flipped-weight
// conv2d (blocked-row's transposed weight on CPU drivers), stride 2 through the transposed gather.
const CONV2D: { name: string; x: number[]; w: number[]; o: Conv2dOptions; bias?: boolean }[] = [
  { name: '3x3 p1, 70 channels', x: [2, 5, 9, 11], w: [70, 5, 3, 3], o: { padding: 1 }, bias: true },
  { name: '3x3 s2 p1', x: [2, 6, 11, 9], w: [20, 6, 3, 3], o: { stride: 2, padding: 1 }, bias: true },
  {
    name: 'groups 2, stride 2, dilation 2',
    x: [1, 8, 13, 12],
    w: [12, 4, 3, 3],
    o: { stride: 2, padding: 2, dilation: 2, groups: 2 },
  },
  { name: 'depthwise 3x3', x: [2, 16, 9, 7], w: [16, 1, 3, 3], o: { padding: 1, groups: 16 }, bias: true },
  { name: '1x1', x: [2, 24, 5, 5], w: [40, 24, 1, 1], o: {}, bias: true },
  {
    name: '5x3 dilated in height, padding [4, 1]',
    x: [1, 6, 10, 9],
    w: [8, 6, 5, 3],
    o: { padding: [4, 1], dilation: [2, 1] },
  },
  { name: '7x7 s4 p3', x: [1, 3, 33, 31], w: [20, 3, 7, 7], o: { stride: 4, padding: 3 }, bias: true },
];

for (const kernel of CONV_KERNELS) {
  describe(`conv2d under autocast, kernel '${kernel}'`, () => {
    CONV2D.forEach((s, i) => {
      it(s.name, async () => {
        useConvKernel(kernel);
        const op: Op = (x, w, b) => conv2d(x, w, b, s.o);
        await checkHalf(`${kernel} ${s.name}`, op, s.x, s.w, s.bias ? [s.w[0]] : null, 10 * i);
      });
    });
  });
}

const TRANSPOSED: { name: string; x: number[]; w: number[]; o: ConvTranspose2dOptions }[] = [
  { name: 'k2 s2, 70 channels (gather)', x: [2, 6, 5, 7], w: [6, 70, 2, 2], o: { stride: 2 } },
  {
    name: 'k3 s2 p1 op1, groups 2 (gather)',
    x: [1, 8, 9, 6],
    w: [8, 12, 3, 3],
    o: { stride: 2, padding: 1, outputPadding: 1, groups: 2 },
  },
  {
    name: 'k3 s3 p2, dilation 2 (gather)',
    x: [1, 5, 4, 7],
    w: [5, 9, 3, 3],
    o: { stride: 3, padding: 2, dilation: 2 },
  },
  {
    name: 'k3 s1 p1, groups 2 (flipped-weight conv2d)',
    x: [1, 4, 5, 4],
    w: [4, 3, 3, 3],
    o: { padding: 1, groups: 2 },
  },
];

for (const kernel of ['direct', 'blocked'] as const) {
  describe(`conv_transpose2d under autocast, '${kernel}' kernels`, () => {
    TRANSPOSED.forEach((s, i) => {
      it(s.name, async () => {
        useConvKernel(kernel);
        const op: Op = (x, w, b) => convTranspose2d(x, w, b, s.o);
        await checkHalf(`${kernel} ${s.name}`, op, s.x, s.w, [s.w[1] * (s.o.groups ?? 1)], 100 + 10 * i);
      });
    });
  });
}

describe('conv1d and the weight gradient under autocast', () => {
  it('conv1d stride 2 p1 goes through the f16 conv2d', async () => {
    useConvKernel(null);
    const op: Op = (x, w, b) => conv1d(x, w, b, { stride: 2, padding: 1 });
    await checkHalf('conv1d', op, [2, 3, 19], [4, 3, 3], [4], 200);
  });

  // 64 -> 128 channels 3x3 on 5x6 has 1152 blocks of taps x channels: one split on CPU drivers
  // (the sum kernel then does not run); the small cases above all split on every adapter.
  it('weight gradient in one split, 128 x 64 x 3 x 3', async () => {
    useConvKernel(null);
    const op: Op = (x, w) => conv2d(x, w, null, { padding: 1 });
    await checkHalf('one split', op, [1, 64, 5, 6], [128, 64, 3, 3], null, 300);
  });
});

describe('the f32 path', () => {
  const xs = [2, 6, 9, 8],
    ws = [10, 3, 3, 3];
  const forward = (x: Tensor, w: Tensor) =>
    tidy(() => {
      const y = conv2d(x, w, null, { padding: 1, groups: 2 });
      const z = convTranspose2d(y, w, null, { stride: 2, groups: 2 });
      return [y, z];
    });
  async function values(f: () => Tensor[]): Promise<number[][]> {
    const outs = noGrad(f);
    const r = await Promise.all(outs.map(async (t) => Array.from(await t.data())));
    for (const t of outs) t.dispose();
    return r;
  }

  it('is bit-identical with autocast off (enabled: false) and outside autocast', async () => {
    useConvKernel(null);
    const x = tensor(randomArray(numel(xs), 1), xs),
      w = tensor(randomArray(numel(ws), 2), ws);
    const plain = await values(() => forward(x, w));
    const off = await values(() => autocast(() => autocast(() => forward(x, w), { enabled: false })));
    const on = await values(() => autocast(() => forward(x, w)));
    expect(off).toEqual(plain);
    for (const v of plain) expect(v, 'f32 precision').not.toEqual(Array.from(half(v)));
    for (const v of on) expect(v, 'autocast rounds to f16').toEqual(Array.from(half(v)));
    x.dispose();
    w.dispose();
  });

  it('runs in f32 under autocast when the adapter lacks shader-f16', async () => {
    useConvKernel(null);
    const x = tensor(randomArray(numel(xs), 3), xs),
      w = tensor(randomArray(numel(ws), 4), ws);
    const plain = await values(() => forward(x, w));
    const dev = device() as { hasF16: boolean };
    const had = dev.hasF16;
    dev.hasF16 = false;
    try {
      expect(await values(() => autocast(() => forward(x, w)))).toEqual(plain);
    } finally {
      dev.hasF16 = had;
    }
    x.dispose();
    w.dispose();
  });

  it('casts an f32 weight to f16 when the input is already f16, outside autocast too', async () => {
    useConvKernel(null);
    const x = tensor(half(randomArray(numel(xs), 5)), xs),
      w = tensor(half(randomArray(numel(ws), 6)), ws);
    const ref = await values(() => [conv2d(x, w, null, { padding: 1, groups: 2 })]);
    const xh = tensor(half(randomArray(numel(xs), 5)), xs, 'f16');
    // Either operand f16 is enough: the other is cast, as matmul's are.
    const got = await values(() => [conv2d(xh, w, null, { padding: 1, groups: 2 })]);
    expectClose(got[0], ref[0], 'f16 input', ATOL, RTOL);
    expect(got[0]).toEqual(Array.from(half(got[0])));
    for (const t of [x, w, xh]) t.dispose();
  });
});
