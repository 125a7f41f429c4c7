// Benchmark helpers: medians over repeated runs after warm-up (lavapipe compiles each pipeline on
// first use, and the machine is shared and noisy, so single runs mean little).
import { device } from '../../engine/index.ts';

export interface BenchTable {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string[];
}

/** Median wall time (ms) of `fn`, which must leave its GPU work recorded; each run is synced. */
export async function timeit(
  fn: () => unknown,
  opts: { warmup?: number; iters?: number; minMs?: number } = {},
): Promise<number> {
  const { warmup = 2, iters = 5, minMs = 0 } = opts;
  for (let i = 0; i < warmup; i++) {
    await fn();
    await device().sync();
  }
  const times: number[] = [];
  const start = performance.now();
  while (times.length < iters || performance.now() - start < minMs) {
    const t0 = performance.now();
    await fn();
    await device().sync();
    times.push(performance.now() - t0);
    if (times.length >= iters * 10) break;
  }
  return median(times);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmtNum(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}
