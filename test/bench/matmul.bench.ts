// f32 matmul throughput of every kernel (GFLOP/s = 2 M N K / median time) and the ratio to the
// naive reference, in one run so the ratios are comparable on a noisy shared machine; then the
// four transpose layouts at 512^3 (linear layers run x @ W^T, backward runs both transposes).
import { device, matmul, randn, type Tensor } from '../../engine/index.ts';
import {
  chooseMatmulKernel,
  useMatmulKernel,
  MATMUL_KERNELS,
  type MatmulKernelName,
} from '../../engine/ops/matmul-kernels.ts';
import { timeit, median, fmtNum, type BenchTable } from './util.ts';

const SIZES = [256, 512, 1024];
const ROUNDS: Record<number, number> = { 256: 9, 512: 5, 1024: 3 };

/**
 * Median GFLOP/s of each kernel over interleaved rounds (one run of every kernel per round), so
 * load from other processes hits every kernel alike and the ratios stay meaningful.
 */
async function gflops(
  kernels: readonly MatmulKernelName[],
  a: Tensor,
  b: Tensor,
  n: number,
  transA = false,
  transB = false,
): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  const once = (k: MatmulKernelName) => {
    useMatmulKernel(k);
    return timeit(() => matmul(a, b, { transA, transB }).dispose(), { warmup: 0, iters: 1 });
  };
  for (const k of kernels) await once(k);
  for (let r = 0; r < ROUNDS[n]; r++) for (const k of kernels) (samples[k] ??= []).push(await once(k));
  return Object.fromEntries(kernels.map((k) => [k, (2 * n ** 3) / (median(samples[k]) * 1e6)]));
}

export default async function (): Promise<BenchTable[]> {
  const chosen = (useMatmulKernel(null), chooseMatmulKernel());
  const rows: (string | number)[][] = [];
  let ratio512 = NaN;
  for (const n of SIZES) {
    const a = randn([n, n]),
      b = randn([n, n]);
    const g = await gflops(MATMUL_KERNELS, a, b, n);
    for (const k of MATMUL_KERNELS) {
      const ms = (2 * n ** 3) / (g[k] * 1e6);
      rows.push([
        `${n}^3`,
        k + (k === chosen ? ' (chosen)' : ''),
        fmtNum(ms, 1),
        fmtNum(g[k]),
        fmtNum(g[k] / g.naive) + 'x',
      ]);
    }
    if (n === 512) ratio512 = g[chosen] / g.naive;
    a.dispose();
    b.dispose();
  }
  const layouts: (string | number)[][] = [];
  const n = 512;
  for (const [transA, transB] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ]) {
    const a = randn([n, n]),
      b = randn([n, n]);
    const g = await gflops(['naive', chosen], a, b, n, transA, transB);
    const naive = g.naive,
      best = g[chosen];
    layouts.push([
      `${transA ? 'Aᵀ' : 'A'} @ ${transB ? 'Bᵀ' : 'B'}`,
      fmtNum(naive),
      fmtNum(best),
      fmtNum(best / naive) + 'x',
    ]);
    a.dispose();
    b.dispose();
  }
  useMatmulKernel(null);
  const cpu = device().isCpuAdapter;
  return [
    {
      title: 'matmul f32, square, every kernel',
      columns: ['size', 'kernel', 'median ms', 'GFLOP/s', 'vs naive'],
      rows,
      notes: [
        `Chosen on this adapter: ${chosen}. Target${cpu ? '' : ' (set for CPU drivers)'}: chosen ` +
          `kernel >= 4x naive at 512^3; ` +
          `measured ${fmtNum(ratio512)}x: ${ratio512 >= 4 ? 'met' : 'NOT met'}.`,
      ],
    },
    {
      title: `matmul f32 512^3, transpose layouts: naive vs ${chosen} (GFLOP/s)`,
      columns: ['layout', 'naive', chosen, 'ratio'],
      rows: layouts,
    },
  ];
}
