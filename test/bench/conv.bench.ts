// conv2d throughput: 3x3, 64 -> 64 channels, 56x56, batch 8, padding 1 (a ResNet stage-1 conv).
// Forward GFLOP/s (2 * N * Cout * OH * OW * Cin * 9 / time) of every kernel and the ratio to the
// direct reference, interleaved (one run of each kernel per round) so drifting load from other
// processes hits every kernel alike; then forward + backward (dx, dW, db) with the kernel this
// adapter chooses. A second table puts two other shapes the models run (PVTv2's depthwise 3x3 and
// a stride-2 patch embedding) through the chosen kernel and the reference.
// A third table puts the same shapes through the chosen kernel in f32 and under autocast (f16
// operands, f32 accumulation), forward and forward + backward, interleaved; `npm run bench amp`
// prints it too. The rows are for GPUs: on a CPU driver f16 is converted on the CPU at each load.
// On a CPU driver the tables also give GFLOP per CPU-second of this process (lavapipe's threads
// run inside it): on a shared, loaded machine wall time swings with other processes' load, while
// the CPU time a kernel burns stays comparable.
import {
  device,
  tensor,
  tidy,
  noGrad,
  backward,
  requiresGrad,
  randn,
  autocast,
  type Tensor,
} from '../../engine/index.ts';
import { conv2d, type Conv2dOptions } from '../../engine/ops/conv.ts';
import { CONV_KERNELS, chooseConvKernel, useConvKernel, type ConvKernelName } from '../../engine/ops/conv-kernels.ts';
import { median, fmtNum, type BenchTable } from './util.ts';

interface Shape {
  x: number[];
  w: number[];
  o: Conv2dOptions & { stride?: number; padding?: number; groups?: number };
}

function flopsOf(s: Shape): number {
  const [n, , h, w] = s.x;
  const [cout, cig, kh, kw] = s.w;
  const st = s.o.stride ?? 1,
    p = s.o.padding ?? 0;
  const oh = Math.floor((h + 2 * p - kh) / st) + 1,
    ow = Math.floor((w + 2 * p - kw) / st) + 1;
  return 2 * n * cout * oh * ow * cig * kh * kw;
}

function geom(s: Shape) {
  const [n, cin, h, w] = s.x;
  const [cout, , kh, kw] = s.w;
  const st = s.o.stride ?? 1,
    p = s.o.padding ?? 0;
  const oh = Math.floor((h + 2 * p - kh) / st) + 1,
    ow = Math.floor((w + 2 * p - kw) / st) + 1;
  return { n, cin, h, w, cout, oh, ow, groups: s.o.groups ?? 1, kh, kw, sh: st, sw: st, ph: p, pw: p, dh: 1, dw: 1 };
}

interface Cost {
  ms: number;
  cpuMs: number;
}

/** Wall and process CPU time of one synced run of `fn`. */
async function measure(fn: () => void): Promise<Cost> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  await device().sync();
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}

function medianCost(xs: Cost[]): Cost {
  return { ms: median(xs.map((x) => x.ms)), cpuMs: median(xs.map((x) => x.cpuMs)) };
}

/** Median forward cost of each kernel over `rounds` interleaved rounds after one warm-up each. */
async function forwardCost(
  kernels: readonly ConvKernelName[],
  x: Tensor,
  w: Tensor,
  b: Tensor,
  o: Conv2dOptions,
  rounds: number,
): Promise<Record<string, Cost>> {
  const once = (k: ConvKernelName) => {
    useConvKernel(k);
    return measure(() => noGrad(() => conv2d(x, w, b, o).dispose()));
  };
  for (const k of kernels) await once(k);
  const samples: Record<string, Cost[]> = {};
  for (let r = 0; r < rounds; r++) for (const k of kernels) (samples[k] ??= []).push(await once(k));
  useConvKernel(null);
  return Object.fromEntries(kernels.map((k) => [k, medianCost(samples[k])]));
}

/** Median cost of forward + backward (dx, dW, db) with the chosen kernel, after one warm-up; in f16 with `amp`. */
async function trainCost(x: Tensor, w: Tensor, b: Tensor, o: Conv2dOptions, iters: number, amp = false): Promise<Cost> {
  const dy = noGrad(() => conv2d(x, w, b, o));
  const cot = tensor(new Float32Array(dy.size).fill(1e-3), dy.shape);
  dy.dispose();
  const params = [x, w, b].map((t) => requiresGrad(t));
  const step = () => {
    tidy(() =>
      backward(
        autocast(() => conv2d(x, w, b, o), { enabled: amp }),
        cot,
      ),
    );
    for (const t of params) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  await measure(step);
  const samples: Cost[] = [];
  for (let i = 0; i < iters; i++) samples.push(await measure(step));
  for (const t of params) t.requiresGrad = false;
  cot.dispose();
  return medianCost(samples);
}

/** The shapes of the second and third tables, besides the main one. */
const OTHERS: [string, Shape][] = [
  [
    'depthwise 3x3, [8, 256, 28, 28] (PVTv2 FFN)',
    { x: [8, 256, 28, 28], w: [256, 1, 3, 3], o: { padding: 1, groups: 256 } },
  ],
  [
    '3x3 s2 p1, 64 -> 128, [8, 64, 56, 56] (patch embedding)',
    { x: [8, 64, 56, 56], w: [128, 64, 3, 3], o: { stride: 2, padding: 1 } },
  ],
];
const MAIN: [string, Shape] = [
  '3x3 p1, 64 -> 64, [8, 64, 56, 56]',
  { x: [8, 64, 56, 56], w: [64, 64, 3, 3], o: { padding: 1 } },
];

/**
 * f32 vs autocast (f16 operands, f32 accumulation) on each shape with the chosen kernel: forward
 * (interleaved rounds; the f16 time includes casting x and the weight, as autocast does each
 * call) and forward + backward.
 */
export async function halfPrecisionTable(shapes: [string, Shape][] = [MAIN, ...OTHERS]): Promise<BenchTable> {
  const cpu = device().isCpuAdapter;
  const rounds = cpu ? 2 : 10;
  useConvKernel(null);
  const rows: string[][] = [];
  for (const [name, s] of shapes) {
    const x = randn(s.x),
      w = randn(s.w, 0, 0.05),
      b = randn([s.w[0]]);
    const fwd = (amp: boolean) =>
      measure(() =>
        tidy(() => {
          noGrad(() => autocast(() => conv2d(x, w, b, s.o), { enabled: amp }));
        }),
      );
    await fwd(false);
    await fwd(true);
    const f: Cost[][] = [[], []];
    for (let r = 0; r < rounds; r++) for (const amp of [false, true]) f[+amp].push(await fwd(amp));
    const [f32, f16] = f.map(medianCost);
    const t32 = await trainCost(x, w, b, s.o, rounds);
    const t16 = await trainCost(x, w, b, s.o, rounds, true);
    const ms = (c: Cost) => fmtNum(c.ms, 1) + (cpu ? ` (CPU ${fmtNum(c.cpuMs, 1)})` : '');
    rows.push([
      name,
      chooseConvKernel(geom(s)),
      ms(f32),
      ms(f16),
      (f16.ms / f32.ms).toFixed(2),
      ms(t32),
      ms(t16),
      (t16.ms / t32.ms).toFixed(2),
    ]);
    for (const t of [x, w, b]) t.dispose();
  }
  return {
    title: `conv2d in f32 vs under autocast (f16 operands, f32 accumulation), chosen kernel (${device().adapterName})`,
    columns: [
      'shape',
      'kernel',
      'forward ms f32',
      'forward ms f16',
      'f16 / f32',
      'fwd + bwd ms f32',
      'fwd + bwd ms f16',
      'f16 / f32',
    ],
    rows,
    notes: [
      `Median of ${rounds} timed runs after 1 warm-up${cpu ? ' (CPU time of this process in brackets)' : ''}; ` +
        'f16 includes the casts of x and the weight (and of dy in the backward).',
      ...(cpu
        ? [
            'CPU driver: f16 there is a storage format converted on the CPU (half the bytes loaded, a ' +
              'conversion per load), 2 rounds on a shared machine: the ratios say nothing of a GPU.',
          ]
        : []),
    ],
  };
}

export default async function (): Promise<BenchTable[]> {
  const cpu = device().isCpuAdapter;
  const rounds = cpu ? 2 : 10;
  const gf = (flops: number, ms: number) => fmtNum(flops / (ms * 1e6));
  const main = MAIN[1];
  const chosen = (useConvKernel(null), chooseConvKernel(geom(main)));
  const x = randn([8, 64, 56, 56]),
    w = randn([64, 64, 3, 3], 0, 0.05),
    b = randn([64]);
  const f = flopsOf(main);
  const c = await forwardCost(CONV_KERNELS, x, w, b, main.o, rounds);
  const row = (name: string, k: Cost, flops: number, vs: string) => [
    name,
    fmtNum(k.ms, 1),
    gf(flops, k.ms),
    ...(cpu ? [gf(flops, k.cpuMs)] : []),
    vs,
  ];
  const rows = CONV_KERNELS.map((k) =>
    row(
      k + (k === chosen ? ' (chosen)' : ''),
      c[k],
      f,
      fmtNum(c.direct.ms / c[k].ms) + 'x' + (cpu ? ` (CPU time ${fmtNum(c.direct.cpuMs / c[k].cpuMs)}x)` : ''),
    ),
  );
  const train = await trainCost(x, w, b, main.o, rounds);
  rows.push(row(`${chosen}: forward + backward (dx, dW, db)`, train, 3 * f, '-'));
  for (const t of [x, w, b]) t.dispose();

  const more: (string | number)[][] = [];
  for (const [name, s] of OTHERS) {
    const k = chooseConvKernel(geom(s));
    const xs = randn(s.x),
      ws = randn(s.w, 0, 0.05),
      bs = randn([s.w[0]]);
    const t = await forwardCost(['direct', k], xs, ws, bs, s.o, rounds);
    const tr = await trainCost(xs, ws, bs, s.o, rounds);
    const g = flopsOf(s);
    more.push([
      name,
      k,
      gf(g, t.direct.ms),
      gf(g, t[k].ms),
      ...(cpu ? [gf(g, t.direct.cpuMs), gf(g, t[k].cpuMs)] : []),
      fmtNum(tr.ms, 1),
    ]);
    for (const u of [xs, ws, bs]) u.dispose();
  }
  const notes = cpu
    ? [
        `CPU driver: each figure is the median of only ${rounds} timed runs after 1 warm-up (the ` +
          `direct kernel takes seconds per run); expect +-20% noise and compare ratios within one run.`,
        'GFLOP/CPU-s = FLOPs per second of CPU time this process used (lavapipe runs in-process): ' +
          'steadier than wall time when other processes load the machine.',
      ]
    : [`Median of ${rounds} timed runs after 1 warm-up.`];
  return [
    {
      title: 'conv2d 3x3, 64 -> 64, 56x56, batch 8, padding 1: every kernel (forward)',
      columns: ['kernel', 'median ms', 'GFLOP/s', ...(cpu ? ['GFLOP/CPU-s'] : []), 'vs direct'],
      rows,
      notes: [...notes, 'The forward + backward row counts 3x the forward FLOPs (forward, dx, dW).'],
    },
    {
      title: 'conv2d, other shapes the models run: direct vs the chosen kernel (forward), forward + backward',
      columns: [
        'shape',
        'chosen',
        'direct GFLOP/s',
        'chosen GFLOP/s',
        ...(cpu ? ['direct GFLOP/CPU-s', 'chosen GFLOP/CPU-s'] : []),
        'forward + backward ms',
      ],
      rows: more,
      notes,
    },
    await halfPrecisionTable(),
  ];
}
