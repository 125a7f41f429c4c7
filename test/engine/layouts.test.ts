// The fast layout paths (engine/ops/layouts.ts and the vec4 unary/fill kernels): every new
// kernel is hit (the dispatched shader names are recorded), and each result equals the host
// reference and the general strided kernel's result on the same inputs (fast paths switched off).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  Tensor,
  tensor,
  tidy,
  device,
  add,
  mul,
  div,
  sub,
  eq,
  lt,
  pow,
  gelu,
  cast,
  permute,
  transpose,
  narrow,
  slice,
  flip,
  expand,
  clone,
  cat,
  full,
  sum,
  backward,
  requiresGrad,
  logicalNot,
  clamp,
  chunk,
} from '../../engine/index.ts';
import { setLayoutFastPaths } from '../../engine/ops/layouts.ts';
import type { Dispatch } from '../../engine/device.ts';
import { randomArray, expectClose, checkFiniteDifferences } from '../helpers.ts';

let shaders: string[] = [];
let original: ((d: Dispatch) => void) | null = null;

beforeAll(() => {
  const dev = device();
  original = dev.dispatch.bind(dev);
  dev.dispatch = (d: Dispatch) => {
    shaders.push(d.shader);
    original!(d);
  };
});
afterAll(() => {
  if (original) device().dispatch = original;
  setLayoutFastPaths(true);
});

/** Runs `fn` with the fast paths on and off: returns both results and the shaders of the fast run. */
async function both(fn: () => Tensor): Promise<{ fast: number[]; general: number[]; used: string[] }> {
  shaders = [];
  const f = tidy(fn);
  const used = [...shaders];
  setLayoutFastPaths(false);
  const g = tidy(fn);
  setLayoutFastPaths(true);
  const out = { fast: Array.from(await f.data()), general: Array.from(await g.data()), used };
  f.dispose();
  g.dispose();
  return out;
}

const t = (shape: number[], seed: number, low = -1, high = 1) =>
  tensor(
    randomArray(
      shape.reduce((a, b) => a * b, 1),
      seed,
      low,
      high,
    ),
    shape,
  );

/** Host reference of a broadcast binary op (right-aligned shapes). */
function hostBinary(
  a: number[],
  as: number[],
  b: number[],
  bs: number[],
  f: (x: number, y: number) => number,
): number[] {
  const rank = Math.max(as.length, bs.length);
  const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(as), pad(bs)];
  const out = pa.map((d, i) => Math.max(d, pb[i]));
  const n = out.reduce((x, y) => x * y, 1);
  const idx = (s: number[], coord: number[]) => coord.reduce((acc, c, i) => acc * s[i] + (s[i] === 1 ? 0 : c), 0);
  return Array.from({ length: n }, (_, i) => {
    const coord: number[] = [];
    let rem = i;
    for (let d = rank - 1; d >= 0; d--) {
      coord[d] = rem % out[d];
      rem = Math.floor(rem / out[d]);
    }
    return f(a[idx(pa, coord)], b[idx(pb, coord)]);
  });
}

describe('binary fast paths', () => {
  const cases: [string, number[], number[], string][] = [
    ['same shape, size 8 (vec4)', [2, 4], [2, 4], 'binary-flat'],
    ['same shape, size 33 (scalar)', [3, 11], [3, 11], 'binary-flat'],
    ['scalar operand on the right', [5, 8], [], 'binary-flat'],
    ['scalar operand on the left, odd size', [1], [5, 7], 'binary-flat'],
    ['bias row [C] over [N, C], C = 12 (vec4)', [9, 12], [12], 'binary-rows'],
    ['row on the left, C = 7 (scalar)', [7], [9, 7], 'binary-rows'],
    ['per-row scalar [N, 1] on the right', [6, 8], [6, 1], 'binary-rows'],
    ['per-row scalar on the left, C = 5', [6, 1], [6, 5], 'binary-rows'],
    ['outer sum [N, 1] + [C]', [6, 1], [8], 'binary-rows'],
    ['leading dims collapse into rows', [2, 3, 8], [8], 'binary-rows'],
    ['broadcast in the middle falls back', [2, 3, 4], [3, 1], 'binary'],
    ['rows past 65535 spill into z', [66000, 2], [2], 'binary-rows'],
  ];
  for (const [name, as, bs, shader] of cases) {
    it(name, async () => {
      const an = as.reduce((x, y) => x * y, 1),
        bn = bs.reduce((x, y) => x * y, 1);
      const [a, b] = [randomArray(an, 1), randomArray(bn, 2, 0.5, 2)];
      for (const [op, f] of [
        [add, (x: number, y: number) => x + y],
        [div, (x: number, y: number) => x / y],
      ] as const) {
        const r = await both(() => op(tensor(a, as), tensor(b, bs)));
        expect(r.used).toContain(shader);
        if (shader === 'binary') expect(r.used.filter((x) => x.startsWith('binary-'))).toEqual([]);
        expect(r.fast).toEqual(r.general);
        expectClose(r.fast, hostBinary(a, as, b, bs, f), `${name} ${op.name}`, 1e-6, 1e-6);
      }
    });
  }

  it('comparisons (f32 out of i32 in) and pow (scalar only) on vec4-sized operands', async () => {
    const a = tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'i32'),
      b = tensor([1, 0, 3, 9, 5, 0, 7, 0], [2, 4], 'i32');
    const e = await both(() => eq(a, b));
    expect(e.used).toContain('binary-flat');
    expect(e.fast).toEqual([1, 0, 1, 0, 1, 0, 1, 0]);
    const l = await both(() => lt(a, tensor([4, 4, 4, 4], [4], 'i32')));
    expect(l.used).toContain('binary-rows');
    expect(l.fast).toEqual([1, 1, 1, 0, 0, 0, 0, 0]);
    const p = await both(() =>
      pow(tensor([-2, -2, 2, 3, -1, 0.5, 4, -3], [2, 4]), tensor([3, 0.5, 2, 0, 2, 2, 0.5, 2], [2, 4])),
    );
    expect(p.fast.map((x) => (Number.isNaN(x) ? 'nan' : x))).toEqual([-8, 'nan', 4, 1, 1, 0.25, 2, 9]);
    expect(p.fast).toEqual(p.general);
    for (const x of [a, b]) x.dispose();
  });

  it('integer division by vec4 and scalar operands', async () => {
    const a = tensor([7, -7, 9, 10, 11, 12, 13, 14], [8], 'i32');
    const r = await both(() => div(a, tensor([2], [], 'i32')));
    expect(r.fast).toEqual([3, -3, 4, 5, 5, 6, 6, 7]);
    a.dispose();
  });

  it('gradients through broadcast rows, both sides', async () => {
    await checkFiniteDifferences(
      (x, bias, s) => mul(sub(add(x, bias), s), bias),
      [{ shape: [5, 8] }, { shape: [8] }, { shape: [5, 1] }],
    );
    await checkFiniteDifferences((x, s) => mul(s, x), [{ shape: [3, 7] }, { shape: [3, 1] }]);
  });
});

describe('copy and write fast paths', () => {
  const x = () => t([2, 3, 4, 8], 3);
  const copies: [string, () => Tensor, string][] = [
    ['head split permute (inner dim contiguous, vec4)', () => permute(x(), [0, 2, 1, 3]), 'strided-copy-rows'],
    ['narrow of the leading dim (a flat window)', () => narrow(x(), 0, 1, 1), 'strided-copy-rows'],
    [
      'slice with an odd inner start (scalar rows)',
      () => slice(x(), [null, null, null, { start: 1, end: 7 }]),
      'strided-copy-rows',
    ],
    [
      'slice with an aligned inner start (vec4 rows)',
      () => slice(x(), [null, { start: 1 }, null, { start: 4 }]),
      'strided-copy-rows',
    ],
    ['expand of a row [C] to [N, C]', () => expand(t([8], 4), [5, 8]), 'strided-copy-rows'],
    ['clone of an odd size', () => clone(t([7, 3], 5)), 'strided-copy-rows'],
    [
      'transpose of the last two dims (test/engine/transpose.test.ts)',
      () => transpose(x(), 2, 3),
      'transpose-', // -blocked or -tiled by adapter
    ],
    ['flip of the last dim falls back', () => flip(x(), [3]), 'strided-copy'],
  ];
  for (const [name, fn, shader] of copies) {
    it(name, async () => {
      const r = await both(fn);
      expect(r.used.some((u) => (shader.endsWith('-') ? u.startsWith(shader) : u === shader))).toBe(true);
      if (shader === 'strided-copy') expect(r.used).not.toContain('strided-copy-rows');
      expect(r.fast).toEqual(r.general);
    });
  }

  it('cat along an inner dim: vec4 and scalar windows', async () => {
    const a = randomArray(2 * 4 * 3, 6),
      b = randomArray(2 * 3 * 3, 7);
    const r = await both(() => cat([tensor(a, [2, 4, 3]), tensor(b, [2, 3, 3])], 1));
    expect(r.used).toContain('strided-write-rows');
    expect(r.fast).toEqual(r.general);
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) expected.push(...a.slice(i * 12, i * 12 + 12), ...b.slice(i * 9, i * 9 + 9));
    expect(r.fast).toEqual(expected.map((v) => Math.fround(v)));
    const v = await both(() => cat([t([3, 4], 8), t([3, 8], 9)], 1));
    expect(v.fast).toEqual(v.general);
  });

  it('slice backward and finite differences through the fast copies', async () => {
    const r = await both(() => {
      const p = requiresGrad(t([4, 6, 8], 10));
      backward(sum(mul(slice(p, [{ start: 1, end: 3 }, null, { start: 4 }]), 3)));
      return p.grad!;
    });
    expect(r.used).toContain('strided-write-rows');
    expect(r.fast).toEqual(r.general);
    await checkFiniteDifferences((a) => permute(narrow(a, 2, 1, 5), [1, 0, 2]), [{ shape: [3, 4, 7] }]);
  });
});

describe('narrow backward in one pass', () => {
  const grads = (shape: number[], fn: (p: Tensor) => Tensor) => () => {
    const p = requiresGrad(t(shape, 20));
    backward(sum(mul(fn(p), t(fn(p).shape as number[], 21))));
    return p.grad!;
  };
  const cases: [string, number[], (p: Tensor) => Tensor][] = [
    ['leading dim (the qkv split), vec4', [3, 2, 8], (p) => narrow(p, 0, 1, 1)],
    ['token range with an odd row (scalar)', [2, 5, 3], (p) => narrow(p, 1, 1, 3)],
    ['last-dim half (SwiGLU chunk), vec4', [3, 16], (p) => narrow(p, 1, 8, 8)],
    ['last dim at an odd start', [3, 9], (p) => narrow(p, -1, 2, 5)],
    ['a slice taking every dim whole', [4, 3], (p) => slice(p, [{ start: 0 }])],
  ];
  for (const [name, shape, fn] of cases) {
    it(name, async () => {
      const r = await both(grads(shape, fn));
      expect(r.used).toContain('narrow-backward');
      expect(r.used.filter((x) => x.startsWith('strided-write'))).toEqual([]);
      expect(r.fast).toEqual(r.general);
    });
  }
  it('stepped and two-dim slices keep fill + strided write', async () => {
    for (const fn of [
      (p: Tensor) => slice(p, [null, { start: 1, step: 2 }]),
      (p: Tensor) => slice(p, [{ start: 1 }, { end: 2 }]),
    ]) {
      const r = await both(grads([4, 6], fn));
      expect(r.used).not.toContain('narrow-backward');
      expect(r.fast).toEqual(r.general);
    }
  });
  it('finite differences through chunk and narrow', async () => {
    await checkFiniteDifferences(
      (a) => {
        const [u, v] = chunk(a, 2, -1);
        return mul(u, v);
      },
      [{ shape: [3, 10] }],
    );
    await checkFiniteDifferences((a) => narrow(a, 1, 2, 3), [{ shape: [2, 7, 5] }]);
  });
});

describe('vec4 unary and fill', () => {
  it('activations, pow, casts and not agree with the scalar kernel', async () => {
    for (const n of [8, 7]) {
      const cases: (() => Tensor)[] = [
        () => gelu(t([n], 11, -3, 3)),
        () => gelu(t([n], 12, -3, 3), 'tanh'),
        () => pow(t([n], 13, -2, 2), 3),
        () => pow(t([n], 14, -2, 2), 0.5),
        () => cast(t([n], 15, -5, 5), 'i32'),
        () => logicalNot(t([n], 16).view([n])),
        () => clamp(t([n], 17), -0.2, 0.3),
      ];
      for (const fn of cases) {
        const r = await both(fn);
        expect(r.used).toContain(n % 4 === 0 ? 'unary-vec4' : 'unary');
        expectClose(r.fast, r.general, `unary size ${n}`, 1e-6, 1e-6);
      }
    }
  });

  it('fill writes every element at sizes 8 and 7', async () => {
    for (const n of [8, 7]) {
      const r = await both(() => full([n], -2.5));
      expect(r.fast).toEqual(Array(n).fill(-2.5));
    }
  });
});
