// The short version of test/soak/kill-resume.ts: the segmenter recipe killed three times (SIGKILL
// while a checkpoint is being written, SIGTERM which saves and exits, SIGKILL at a random moment)
// and resumed each time ends with exactly the loss curve of an uninterrupted run and no stray
// file in its output folder.
import { describe, it, expect } from 'vitest';
import { soak } from '../soak/kill-resume.ts';

describe('kill and resume (05-segmenter)', () => {
  it('three kills, one during a checkpoint write: same loss curve, no stray files', async () => {
    const r = await soak({
      kills: 3,
      steps: 4,
      seed: 7,
      log: () => undefined,
      plan: [
        { signal: 'SIGKILL', when: 'during checkpoint write' },
        { signal: 'SIGTERM', when: 'random' },
        { signal: 'SIGKILL', when: 'random' },
      ],
    });
    expect(r.kills.map((k) => `${k.signal} ${k.when}`)).toEqual([
      'SIGKILL during checkpoint write',
      'SIGTERM random',
      'SIGKILL random',
    ]);
    expect(r.kills[0].partialLeft, 'the first kill lands inside a checkpoint write').toEqual([
      expect.stringMatching(/^\.state\.safetensors\.tmp-\d+$/),
    ]);
    expect(r.kills[1].code).toBe(143);
    expect(r.reference).toHaveLength(4);
    expect(r.resumed).toEqual(r.reference);
    expect(r.strayFiles).toEqual([]);
  }, 600_000);
});
