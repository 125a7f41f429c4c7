// Dawn's Node binding polls its event loop by re-scheduling itself with the global setImmediate
// while any GPU promise is pending: the main thread then spins at 100% and takes a core away
// from a CPU Vulkan driver. This wrapper lets a polling streak spin for its first 2 ms (short
// round trips stay fast) and then backs off to a 1 ms timer. A streak is a run of setImmediate
// calls less than 5 ms apart; gpuWait() starts a new one. clearImmediate is wrapped so a
// backed-off callback can be cleared.
// Measured on lavapipe: long GPU work 40-60% faster (see PLATFORM.md, `npm run bench`).
import { knobs, setFlag } from '../engine/index.ts';

const SPIN_MS = 2;
const GAP_MS = 5;
let installed = false;
let last = -Infinity;

/**
 * Turns the back-off off (plain setImmediate spinning) or back on (the `pollingBackoff` knob);
 * benchmarks compare the two.
 */
export function setPollingBackoff(on: boolean): void {
  setFlag('pollingBackoff', on);
}

/**
 * Marks the start of a GPU wait, so that its polling spins for the first SPIN_MS even when it
 * follows the previous wait closely (a loop of small readbacks would otherwise pay the 1 ms timer
 * every time). Meant as the device's `awaitGpu` hook.
 */
export function gpuWait<T>(p: Promise<T>): Promise<T> {
  last = -Infinity;
  return p;
}

export function installPollingBackoff(): void {
  if (installed) return;
  installed = true;
  const realSet = globalThis.setImmediate;
  const realClear = globalThis.clearImmediate;
  let streakStart = 0;
  const set = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
    const now = performance.now();
    if (now - last > GAP_MS) streakStart = now;
    last = now;
    if (!knobs.pollingBackoff || now - streakStart < SPIN_MS) return realSet(fn, ...args);
    return setTimeout(fn, 1, ...args);
  }) as unknown as typeof setImmediate;
  globalThis.setImmediate = Object.assign(set, { __promisify__: realSet.__promisify__ });
  globalThis.clearImmediate = ((h: unknown) => {
    if (h && typeof h === 'object' && 'hasRef' in h && !('_onImmediate' in h)) clearTimeout(h as NodeJS.Timeout);
    else realClear(h as NodeJS.Immediate);
  }) as typeof clearImmediate;
}
