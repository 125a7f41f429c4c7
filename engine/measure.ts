// Measured kernel choice (the `auto-measure` value of a kernel knob, engine/flags.ts): the first
// time a shape class meets a decision, every candidate kernel runs once on the live inputs, each
// timed on the GPU (Device.timeRegions: timestamp queries, else completion times), and the winner
// is cached per (adapter, kernel, shape class). Ops are synchronous and a timing is not, so that
// first call (and any before the timings come back) takes the knob's `auto` rule; calls after
// the result arrived take the winner. The candidates are recorded back to back before any later
// work, so the training step around them does not pollute their times. DEBUG>=1 prints each
// choice as `[measure] kernel class: a 1.20 ms, b 3.40 ms -> a`.
// Reference: cuDNN's benchmark mode / torch.backends.cudnn.benchmark (time the algorithms once
// per input shape, cache the fastest).
import { device } from './tensor.ts';

const winners = new Map<string, string>();
const pending = new Map<string, Promise<void>>();
/** Measurements finished and decisions answered from the cache, since the start. */
export const measureStats = { measured: 0, hits: 0 };

/**
 * The cached winner for this decision, or `fallback` while it is being measured: the first call
 * of a shape class starts the measurement, running `run(candidate)` for each candidate.
 */
export function measuredChoice<C extends string>(
  kernel: string,
  shapeClass: string,
  candidates: readonly C[],
  fallback: C,
  run: (candidate: C) => void,
): C {
  const d = device();
  const key = `${d.adapterName}|${kernel}|${shapeClass}`;
  const won = winners.get(key) as C | undefined;
  if (won !== undefined) {
    measureStats.hits++;
    return won;
  }
  if (candidates.length < 2) return fallback; // nothing to choose between
  if (!pending.has(key) && !d.dryRun) {
    const done = d
      .timeRegions(candidates.map((c) => () => run(c)))
      .then((ns) => {
        const best = candidates[ns.indexOf(Math.min(...ns))];
        winners.set(key, best);
        measureStats.measured++;
        const times = candidates.map((c, i) => `${c} ${(ns[i] / 1e6).toFixed(2)} ms`).join(', ');
        d.note(1, `[measure] ${kernel} ${shapeClass}: ${times} -> ${best}`);
      })
      .catch((e: unknown) => {
        winners.set(key, fallback); // a failed measurement keeps the rule's choice, once
        d.note(1, `[measure] ${kernel} ${shapeClass}: measurement failed (${String(e)}), keeping ${fallback}`);
      })
      .finally(() => pending.delete(key));
    pending.set(key, done);
  }
  return fallback;
}

/** Resolves when every measurement started so far has its winner (tests, and a warm-up step). */
export async function settleMeasurements(): Promise<void> {
  await Promise.all([...pending.values()]);
}

/** The cached winners, `adapter|kernel|class` -> candidate. */
export function measuredWinners(): ReadonlyMap<string, string> {
  return winners;
}

/** A size's class for measured choices: its power-of-two bucket (1, 2, 4, ... rounded up). */
export const sizeBucket = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
