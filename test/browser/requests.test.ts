// The page's request runner (runtime-browser/page/requests.ts) in Node: one job at a time, the
// newest of a lane replacing a waiting one, a running job told when it has gone stale, waiting
// lanes run model -> image -> box, and every request settles exactly once.
import { describe, it, expect } from 'vitest';
import { Requests, type Lane } from '../../runtime-browser/page/requests.ts';

function harness() {
  const log: string[] = [];
  const busy: (string | null)[] = [];
  const r = new Requests({
    busy: (what) => busy.push(what),
    settled: (outcome, job) => log.push(`${job.what}:${outcome}`),
  });
  let release: (() => void)[] = [];
  /** A job that waits until released, then records whether it was still current. */
  const job = (lane: Lane, what: string, fail = false) => ({
    lane,
    what,
    run: (current: () => boolean) =>
      new Promise<void>((ok, bad) => {
        release.push(() => {
          log.push(`${what} ran, current=${current()}`);
          if (fail) bad(new Error('boom'));
          else ok();
        });
      }),
  });
  const step = async () => {
    const f = release.shift();
    f?.();
    await new Promise((ok) => setTimeout(ok, 0));
  };
  const drain = async () => {
    while (!r.idle) await step();
    release = [];
  };
  return { r, log, busy, job, step, drain };
}

describe('Requests: the newest request wins', () => {
  it(
    'rapid requests of one lane: the first runs (told it is stale), the middle ones never run, the ' + 'last runs',
    async () => {
      const { r, log, busy, job, drain } = harness();
      for (const n of ['a', 'b', 'c', 'd']) r.submit(job('image', n));
      expect(busy).toEqual(['a']);
      await drain();
      expect(log).toEqual([
        'b:superseded',
        'c:superseded',
        'a ran, current=false',
        'a:superseded',
        'd ran, current=true',
        'd:done',
      ]);
      expect(busy).toEqual(['a', 'd', null]);
    },
  );

  it('a new model does not drop a waiting image; waiting lanes run model, image, box', async () => {
    const { r, log, job, drain } = harness();
    r.submit(job('box', 'box1'));
    r.submit(job('image', 'img'));
    r.submit(job('model', 'm'));
    await drain();
    // box1 started first; the image request made it stale; the model runs before the image.
    expect(log).toEqual([
      'box1 ran, current=false',
      'box1:superseded',
      'm ran, current=true',
      'm:done',
      'img ran, current=true',
      'img:done',
    ]);
  });

  it('a waiting box prompt is dropped by a new image; a failure settles as failed and the queue goes on', async () => {
    const { r, log, job, drain } = harness();
    r.submit(job('model', 'm', true));
    r.submit(job('box', 'box1'));
    r.submit(job('image', 'img'));
    expect(r.pending('image')).toBe(true);
    await drain();
    expect(log).toEqual(['box1:superseded', 'm ran, current=true', 'm:failed', 'img ran, current=true', 'img:done']);
    expect(r.idle).toBe(true);
  });
});
