// The page's one request queue and its small shared helpers: requests run one at a time and the
// newest wins (requests.ts); every request settles exactly once (done, failed or superseded) and
// `state.actions` counts them, so a test can wait for all it made. A job that finds a newer request
// has made its result stale stops with `Superseded` (`still`).
import { Requests } from './requests.ts';
import { $, showError } from './render.ts';
import { state } from './state.ts';

export const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
export const now = () => performance.now();
export function timing(name: string, ms: number): void {
  state.timings[name] = ms;
}

export const requests = new Requests({
  busy(what) {
    state.busy = what !== null;
    state.busyWhat = what;
    $('busy').hidden = !what;
    $('busy-text').textContent = what ?? '';
    $('result').classList.toggle('busy', !!what);
    $('result').setAttribute('aria-busy', String(!!what));
  },
  settled(outcome, job, e) {
    state.actions++;
    state.outcomes[outcome]++;
    if (outcome === 'failed') {
      // each job reports its own errors; this keeps an unexpected one visible
      state.resultError = `${job.what}: ${message(e)}`;
      showError('result-error', state.resultError);
    }
  },
});

export class Superseded extends Error {}
/** Stops a job whose result a newer request has made stale (requests.ts counts it superseded). */
export const still = (current: () => boolean) => {
  if (!current()) throw new Superseded('superseded by a newer request');
};
