// Fused attention (one forward kernel, three backward kernels) against the unfused reference
// (matmul, softmax composite, matmul) at ViT-Ti shapes: batch 8, 3 heads, head dim 64, N = 257
// (224^2 / 16^2 + cls) and N = 1024. Median wall time of forward and of forward + backward,
// and the peak of live buffer bytes during one forward + backward.
import { Tensor, tensor, tidy, device, backward, requiresGrad, sum } from '../../engine/index.ts';
import { scaledDotProductAttention, attentionReference } from '../../engine/ops/attention.ts';
import { timeit, fmtNum, type BenchTable } from './util.ts';

type Attn = (q: Tensor, k: Tensor, v: Tensor) => Tensor;

function inputs(b: number, h: number, n: number, d: number): Tensor[] {
  const size = b * h * n * d;
  return [1, 2, 3].map((s) => {
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.sin(i * 0.37 + s) * 0.5;
    return requiresGrad(tensor(data, [b, h, n, d]));
  });
}

function step(fn: Attn, xs: Tensor[], withBackward: boolean): void {
  tidy(() => {
    const o = fn(xs[0], xs[1], xs[2]);
    if (withBackward) backward(sum(o));
  });
  for (const x of xs) {
    x.grad?.dispose();
    x.grad = null;
  }
}

export default async function (): Promise<BenchTable> {
  const rows: (string | number)[][] = [];
  const b = 8,
    h = 3,
    d = 64;
  for (const [n, iters] of [
    [257, 7],
    [1024, 2],
  ]) {
    const xs = inputs(b, h, n, d);
    const res: Record<string, { fwd: number; both: number; peak: number }> = {};
    for (const [name, fn] of [
      ['fused', scaledDotProductAttention],
      ['reference', attentionReference],
    ] as [string, Attn][]) {
      const fwd = await timeit(() => step(fn, xs, false), { warmup: 1, iters });
      const both = await timeit(() => step(fn, xs, true), { warmup: 1, iters });
      await device().sync();
      device().resetPeak();
      const base = device().stats().liveBytes;
      step(fn, xs, true);
      await device().sync();
      res[name] = { fwd, both, peak: device().stats().peakLiveBytes - base };
    }
    for (const [name, r] of Object.entries(res)) {
      rows.push([
        `B${b} H${h} N${n} d${d}`,
        name,
        fmtNum(r.fwd, 0),
        fmtNum(r.both, 0),
        fmtNum(r.peak / 2 ** 20, 1),
        name === 'fused'
          ? `${fmtNum(res.reference.both / r.both)}x time, ${fmtNum(res.reference.peak / r.peak, 1)}x memory`
          : '',
      ]);
    }
    for (const x of xs) x.dispose();
  }
  return {
    title: 'Attention: fused kernels vs unfused reference (ViT-Ti shapes)',
    columns: ['shape', 'path', 'forward ms', 'forward + backward ms', 'peak MiB above inputs', 'fused vs reference'],
    rows,
    notes: [
      'Medians after 1 warm-up run: 7 runs at N = 257, 2 at N = 1024 (a CPU driver is slow). Peak: ' +
        'device().resetPeak() before one forward + backward, peakLiveBytes after, minus the live bytes ' +
        'of q, k, v.',
      'Backward = sum(out).backward(): the reference materialises [B, H, N, N] scores and ' +
        'probabilities; the fused path keeps O and a logsumexp per row.',
    ],
  };
}
