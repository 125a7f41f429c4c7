// Benchmark helpers: medians over repeated runs after warm-up (lavapipe compiles each pipeline on
// first use, and the machine is shared and noisy, so single runs mean little).
import { cpus, loadavg } from 'node:os';
import { device, tidy, backward, type Tensor } from '../../engine/index.ts';
import type { Optimizer, OptimizerOptions } from '../../engine/optim/index.ts';

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

/** One timed training step: wall time and the CPU time of the engine's process (ms). */
export interface StepTime {
  ms: number;
  cpuMs: number;
}

export interface Contender {
  name: string;
  step: () => Promise<StepTime>;
}

/**
 * Runs one step of every contender per round, over `rounds` rounds, the order reversed every
 * other round, so that load drifting on a shared machine falls on every engine alike.
 * Returns each contender's step times, in round order.
 */
export async function alternate(
  contenders: Contender[],
  rounds: number,
  log: (msg: string) => void = () => {},
): Promise<StepTime[][]> {
  const times = contenders.map((): StepTime[] => []);
  for (let r = 0; r < rounds; r++) {
    for (const i of roundOrder(contenders.length, r)) {
      const t = await contenders[i].step();
      times[i].push(t);
      const secs = `${fmtNum(t.ms / 1000)} s wall, ${fmtNum(t.cpuMs / 1000)} CPU-s`;
      log(`round ${r + 1}/${rounds} ${contenders[i].name}: ${secs} (load ${machine().load})`);
    }
  }
  return times;
}

/** Contender indices in the order they run in round `r`: forward, then backward, and so on. */
export function roundOrder(n: number, r: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return r % 2 ? order.reverse() : order;
}

/** Median and range of a sample. */
export function spread(xs: number[]): { median: number; min: number; max: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/** The machine a figure was measured on: CPU model, cores, and the load average now. */
export function machine(): { cpu: string; cores: number; load: string } {
  return {
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cores: cpus().length,
    load: loadavg()
      .map((x) => x.toFixed(1))
      .join(' '),
  };
}

export interface PeerRun {
  name: string;
  times: StepTime[];
  error?: string;
}

/**
 * The table of a peer benchmark: per engine the median and range of wall and CPU time per step,
 * images/s, and the ratio of medians against the first engine (this one), with the per-round
 * ratio range; notes name the rounds, CPU, cores, load at start and end, and the adapter.
 */
export function peerTable(
  title: string,
  batch: number,
  runs: PeerRun[],
  ctx: { rounds: number; adapter: string; loadStart: string; extra?: string[] },
): BenchTable {
  const s = (x: number) => fmtNum(x / 1000);
  const range = (xs: number[]) => {
    const p = spread(xs);
    return `${s(p.median)} (${s(p.min)}-${s(p.max)})`;
  };
  const ours = runs[0].times;
  const rows = runs.map((r) => {
    if (!r.times.length) return [r.name, '-', '-', '-', '-', r.error ?? 'no steps'];
    const wall = r.times.map((t) => t.ms);
    const perRound = r.times.map((t, i) => t.ms / ours[i].ms);
    const ratio = median(wall) / median(ours.map((t) => t.ms));
    const rr = spread(perRound);
    return [
      r.name,
      range(wall),
      range(r.times.map((t) => t.cpuMs)),
      fmtNum((batch * 1000) / median(wall)),
      r === runs[0] ? '1.00x' : `${fmtNum(ratio)}x (rounds ${fmtNum(rr.min)}-${fmtNum(rr.max)}x)`,
      r.error ?? '',
    ];
  });
  const m = machine();
  return {
    title,
    columns: [
      'engine',
      'wall s/step median (min-max)',
      'CPU s/step median (min-max)',
      'images/s',
      'time vs this engine',
      'note',
    ],
    rows,
    notes: [
      `${ctx.rounds} rounds, one step of each engine per round, order reversed every other round, after 1 warm-up ` +
        `step each; ratio = median wall time of the engine / median of this engine.`,
      `CPU: ${m.cpu}, ${m.cores} cores; load average (1/5/15 min) ${ctx.loadStart} at start, ${m.load} at end; ` +
        `adapter: ${ctx.adapter}.`,
      ...(ctx.extra ?? []),
    ],
  };
}

/** One training step as the model benchmarks time it: loss, backward, step, zero_grad; returns the loss. */
export async function trainStep(opt: Optimizer<OptimizerOptions>, lossFn: () => Tensor): Promise<number> {
  const l = tidy(() => {
    const loss = lossFn();
    backward(loss);
    opt.step();
    opt.zeroGrad();
    return loss;
  });
  const v = await l.item();
  l.dispose();
  return v;
}
