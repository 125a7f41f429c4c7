// Autocast and the f16 kernels: casts round as IEEE half does (nearest even, overflow to inf),
// every f16 matmul kernel matches the f16-rounded float64 product on awkward shapes (transposes,
// batch broadcasting), and a Linear under autocast computes in f16 while its f32 master weights
// receive f32 gradients.
import { describe, it, expect } from 'vitest';
import {
  Tensor,
  tensor,
  tidy,
  backward,
  device,
  cast,
  autocast,
  matmul,
  sum,
  mul,
  randn,
  useMatmulKernel,
  MATMUL_KERNELS,
  scaledDotProductAttention,
  requiresGrad,
} from '../../engine/index.ts';
import { Linear } from '../../engine/nn/index.ts';
import { fromHalf, toHalf } from '../../engine/f16.ts';
import { expectClose } from '../helpers.ts';

const half = (xs: ArrayLike<number>) => fromHalf(toHalf(xs));

function rand(n: number, seed: number, scale = 1): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return ((s / 2 ** 31) * 2 - 1) * scale;
  });
}

describe('cast', () => {
  it('rounds f32 to f16 to nearest even, overflows to inf, keeps subnormals, and widens exactly', async () => {
    const xs = [0, -0, 1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, 1e6, -1e6, 6e-8, 3e-5, 0.1, -2.5e-3, 1e-9];
    const x = tensor(xs, [xs.length]);
    const h = cast(x, 'f16');
    expect(h.dtype).toBe('f16');
    expect(Array.from(await h.data())).toEqual(Array.from(half(xs)));
    const back = cast(h, 'f32');
    expect(Array.from(await back.data())).toEqual(Array.from(half(xs)));
    for (const t of [x, h, back]) t.dispose();
  });

  it('passes the gradient back in f32', async () => {
    const x = requiresGrad(tensor([1, 2, 3], [3]));
    tidy(() => backward(sum(mul(cast(cast(x, 'f16'), 'f32'), tensor([4, 5, 6], [3])))));
    expect(x.grad!.dtype).toBe('f32');
    expect(Array.from(await x.grad!.data())).toEqual([4, 5, 6]);
    x.grad!.dispose();
    x.dispose();
  });
});

describe('f16 matmul kernels', () => {
  // [batch dims of a], [batch dims of b], m, k, n, transA, transB
  const cases: [number[], number[], number, number, number, boolean, boolean][] = [
    [[], [], 7, 19, 33, false, false],
    [[], [], 33, 5, 1, true, false],
    [[3], [1], 9, 40, 17, false, true],
    [[2, 1], [3], 65, 3, 70, true, true],
  ];
  for (const kernel of MATMUL_KERNELS) {
    it(`${kernel}: matches the f16-rounded float64 product`, async () => {
      useMatmulKernel(kernel);
      try {
        for (const [ba, bb, m, k, n, ta, tb] of cases) {
          const sa = [...ba, ...(ta ? [k, m] : [m, k])];
          const sb = [...bb, ...(tb ? [n, k] : [k, n])];
          const av = half(
            rand(
              sa.reduce((p, d) => p * d, 1),
              1 + m,
              3,
            ),
          );
          const bv = half(
            rand(
              sb.reduce((p, d) => p * d, 1),
              2 + n,
              3,
            ),
          );
          const a = tensor(av, sa, 'f16'),
            b = tensor(bv, sb, 'f16');
          const c = matmul(a, b, { transA: ta, transB: tb });
          expect(c.dtype).toBe('f32');
          const got = await c.data();
          // float64 reference of the same op, through the f32 path's semantics on the CPU.
          const batch = c.shape.slice(0, -2);
          const nb = batch.reduce((p, d) => p * d, 1);
          const want: number[] = [];
          const idx = (shape: number[], bi: number, bshape: number[]) => {
            // broadcast batch index bi (over bshape) into an operand with batch dims `shape`
            let off = 0,
              rem = bi,
              stride = 1;
            const coords = bshape.map(() => 0);
            for (let d = bshape.length - 1; d >= 0; d--) {
              coords[d] = rem % bshape[d];
              rem = Math.floor(rem / bshape[d]);
            }
            const lead = bshape.length - shape.length;
            for (let d = shape.length - 1; d >= 0; d--) {
              off += (shape[d] === 1 ? 0 : coords[d + lead]) * stride;
              stride *= shape[d];
            }
            return off;
          };
          for (let bi = 0; bi < nb; bi++) {
            const oa = idx(ba, bi, batch) * m * k,
              ob = idx(bb, bi, batch) * k * n;
            for (let i = 0; i < m; i++)
              for (let j = 0; j < n; j++) {
                let s = 0;
                for (let l = 0; l < k; l++)
                  s += av[oa + (ta ? l * m + i : i * k + l)] * bv[ob + (tb ? j * k + l : l * n + j)];
                want.push(s);
              }
          }
          // The kernel rounds its f32 sum to f16: within one f16 rounding of the exact value.
          expectClose(got, half(want), `${kernel} ${sa} x ${sb}`, 1e-6, 2 ** -10);
          expect(Array.from(got), 'every output is an f16 value').toEqual(Array.from(half(got)));
          for (const t of [a, b, c]) t.dispose();
        }
      } finally {
        useMatmulKernel(null);
      }
    });
  }
});

describe('autocast', () => {
  it('runs Linear in f16 with f32 master weights receiving f32 gradients', async () => {
    const lin = new Linear(24, 10);
    const x = randn([5, 24]).keep();
    const run = async (amp: boolean) => {
      lin.zeroGrad();
      const y = tidy(() => {
        const out = autocast(() => lin.forward(x), { enabled: amp });
        backward(sum(mul(out, out)));
        return out;
      });
      const r = { y: await y.data(), dw: await lin.weight.grad!.data(), db: await lin.bias!.grad!.data() };
      expect(lin.weight.dtype).toBe('f32');
      expect(lin.weight.grad!.dtype).toBe('f32');
      y.dispose();
      return r;
    };
    const f32 = await run(false);
    const f16 = await run(true);
    // The f16 output is the f16 rounding of an f32-accumulated sum of f16 products: compare with
    // the f32 result at f16 precision (inputs rounded to 2^-11 relative, ~24 terms).
    expectClose(f16.y, f32.y, 'y', 1e-2, 1e-2);
    expectClose(f16.dw, f32.dw, 'dW', 3e-2, 2e-2);
    expectClose(f16.db, f32.db, 'db', 3e-2, 2e-2);
    expect(f16.y).not.toEqual(f32.y);
    lin.zeroGrad();
    x.dispose();
  });

  it('builds attention from f16 matmuls and an f32 softmax', async () => {
    const [q, k, v] = [1, 2, 3].map(() => randn([2, 2, 7, 8]).keep());
    const ref = scaledDotProductAttention(q, k, v);
    const amp = autocast(() => scaledDotProductAttention(q, k, v));
    expect(amp.dtype).toBe('f32');
    const a = await amp.data();
    expectClose(a, await ref.data(), 'attention', 1e-2, 1e-2);
    expect(Array.from(a)).toEqual(Array.from(half(a))); // the last op is an f16 matmul
    for (const t of [q, k, v, ref, amp]) t.dispose();
  });

  it('is off outside the scope and for enabled: false', async () => {
    expect(device().hasF16).toBe(true); // lavapipe and the GPUs the project targets expose shader-f16
    const x = tensor([1 / 3, 1 / 7], [1, 2]);
    const dot = (t: Tensor) => matmul(t, t, { transB: true });
    const exact = Math.fround(Math.fround(Math.fround(1 / 3) ** 2) + Math.fround(Math.fround(1 / 7) ** 2));
    const rounded = half([half([1 / 3])[0] ** 2 + half([1 / 7])[0] ** 2])[0];
    const outs = [dot(x), autocast(() => dot(x), { enabled: false }), autocast(() => dot(x))];
    const got = await Promise.all(outs.map((t) => t.item()));
    expect(got).toEqual([exact, exact, rounded]);
    for (const t of [x, ...outs]) t.dispose();
  });
});
