// Elementwise and copy kernels at EVA-02-Ti training shapes (batch 8, 257 tokens, width 192,
// SwiGLU hidden 512, 3 heads of 64): M elements/s of the general strided kernels (the layout fast
// paths switched off) vs the fast paths (engine/ops/layouts.ts), alternating the two over rounds
// so drifting machine load hits both alike. Each figure is the median over rounds of a median of
// timed runs.
import { tidy, randn, add, mul, permute, narrow, transpose, type Tensor } from '../../engine/index.ts';
import { setLayoutFastPaths, useTransposeKernel } from '../../engine/ops/layouts.ts';
import { timeit, median, fmtNum, type BenchTable } from './util.ts';
import { envInt } from './models.ts';

const B = 8,
  N = 257,
  C = 192,
  H = 3,
  HD = 64,
  HID = 512;

export default async function bench(): Promise<BenchTable> {
  const rounds = envInt('BENCH_LAYOUT_ROUNDS', 5);
  const x = randn([B, N, C]).keep(),
    y = randn([B, N, C]).keep(),
    bias = randn([C]).keep();
  const h = randn([B, N, 2 * HID]).keep(),
    s = randn([B, N, 1]).keep();
  const qkv = randn([B, N, 3 * C]).keep(),
    heads = randn([B, H, N, HD]).keep(),
    p = randn([B, C, 256]).keep();
  const cases: [string, number, () => Tensor][] = [
    ['add, same shape [8, 257, 192]', x.size, () => add(x, y)],
    ['add, bias [192] over [8, 257, 192]', x.size, () => add(x, bias)],
    ['mul, same shape [8, 257, 192]', x.size, () => mul(x, y)],
    ['mul, per-row [8, 257, 1] over [8, 257, 192]', x.size, () => mul(x, s)],
    [
      'copy: qkv head split permute [B, N, 3, H, hd] -> [3, B, H, N, hd]',
      qkv.size,
      () => permute(qkv.view([B, N, 3, H, HD]), [2, 0, 3, 1, 4]),
    ],
    ['copy: heads merge permute [B, H, N, hd] -> [B, N, H, hd]', heads.size, () => permute(heads, [0, 2, 1, 3])],
    ['copy: SwiGLU chunk narrow [8, 257, 1024] -> [8, 257, 512]', h.size / 2, () => narrow(h, 2, HID, HID)],
    ['copy: patch transpose [8, 192, 256] -> [8, 256, 192] (transpose kernel)', B * C * 256, () => transpose(p, 1, 2)],
    [
      'copy: the same transpose through the GPU form (16x16 workgroup-memory tiles, forced)',
      B * C * 256,
      () => {
        useTransposeKernel('tiled');
        const y = transpose(p, 1, 2);
        useTransposeKernel(null);
        return y;
      },
    ],
  ];
  const ms: Record<string, { general: number[]; fast: number[] }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const fast of r % 2 ? [true, false] : [false, true]) {
      setLayoutFastPaths(fast);
      for (const [name, , fn] of cases) {
        const t = await timeit(
          () =>
            tidy(() => {
              for (let i = 0; i < 4; i++) fn();
            }),
          { warmup: 1, iters: 3 },
        );
        (ms[name] ??= { general: [], fast: [] })[fast ? 'fast' : 'general'].push(t / 4);
      }
    }
  }
  setLayoutFastPaths(true);
  for (const t of [x, y, bias, h, s, qkv, heads, p]) t.dispose();
  const rate = (n: number, m: number) => fmtNum(n / (m * 1e3), 0);
  return {
    title: 'Elementwise and copy kernels at EVA-02-Ti shapes: general strided kernels vs layout fast paths',
    columns: ['op', 'elements', 'general M el/s', 'fast M el/s', 'speedup'],
    rows: cases.map(([name, n]) => {
      const g = median(ms[name].general),
        f = median(ms[name].fast);
      return [name, n, rate(n, g), rate(n, f), fmtNum(g / f) + 'x'];
    }),
    notes: [
      `Median over ${rounds} alternating rounds of the median of 3 timed runs (4 ops each, after a ` +
        `warm-up); wall time including dispatch.`,
    ],
  };
}
