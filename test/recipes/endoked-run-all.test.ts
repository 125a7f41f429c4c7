// EndoKED end to end (recipes/endoked/run-all.ts, npm run endoked) and the stamps that make it
// resumable (recipes/endoked/pipeline.ts). The stamps: a stage folder is reused while its key is
// unchanged, cleared and redone when the key changes, resumed (not cleared) after an interruption
// under the same key. The pipeline: --quick runs every stage on tiny synthetic sizes and writes
// report.md with every stage's figures, the rounds and both baselines; a second run reuses every
// stage.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withStamp, stampOf } from '../../recipes/endoked/pipeline.ts';
import { main } from '../../recipes/endoked/run-all.ts';
import { headline } from '../../recipes/endoked/run-all-report.ts';
import { STAGE_SCRIPTS } from '../../recipes/endoked/run-all-stages.ts';

describe('pipeline stamps', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'stamps-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('reuses an unchanged stage, clears and redoes a changed one, resumes an interrupted one', async () => {
    const dir = join(tmp, 'stage');
    let runs = 0;
    const work = async () => {
      runs++;
      writeFileSync(join(dir, `out-${runs}.txt`), 'x');
    };
    const a = await withStamp(dir, { input: 'a' }, work, { within: tmp });
    expect(a.status).toBe('ran');
    expect(stampOf(dir)).toBe(a.hash);
    expect((await withStamp(dir, { input: 'a' }, work, { within: tmp })).status).toBe('reused');
    expect(runs).toBe(1);
    // Changed key: the old outputs go before the stage runs again.
    const b = await withStamp(dir, { input: 'b' }, work, { within: tmp });
    expect(b.status).toBe('ran');
    expect(b.hash).not.toBe(a.hash);
    expect(readdirSync(dir).filter((n) => n.startsWith('out-'))).toEqual(['out-2.txt']);
    // Interrupted under key c: its partial outputs stay for the stage to resume from.
    await expect(
      withStamp(
        dir,
        { input: 'c' },
        async () => {
          writeFileSync(join(dir, 'partial.txt'), 'p');
          throw new Error('killed');
        },
        { within: tmp },
      ),
    ).rejects.toThrow('killed');
    expect(stampOf(dir)).toBeNull();
    let sawPartial = false;
    await withStamp(
      dir,
      { input: 'c' },
      async () => {
        sawPartial = existsSync(join(dir, 'partial.txt'));
      },
      { within: tmp },
    );
    expect(sawPartial).toBe(true);
    // ...but not under another key.
    await expect(
      withStamp(
        dir,
        { input: 'd' },
        async () => {
          writeFileSync(join(dir, 'partial.txt'), 'p');
          throw new Error('killed');
        },
        { within: tmp },
      ),
    ).rejects.toThrow();
    await withStamp(
      dir,
      { input: 'e' },
      async () => {
        sawPartial = existsSync(join(dir, 'partial.txt'));
      },
      { within: tmp },
    );
    expect(sawPartial).toBe(false);
  });

  it('never clears a folder outside the run', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'outside-'));
    writeFileSync(join(outside, 'keep.txt'), 'k');
    await expect(withStamp(outside, { k: 1 }, async () => undefined, { within: join(tmp, 'run') })).rejects.toThrow(
      /outside/,
    );
    expect(existsSync(join(outside, 'keep.txt'))).toBe(true);
    rmSync(outside, { recursive: true });
  });

  it('picks headline figures from nested metrics, skipping histories', () => {
    const m = { accuracy: 0.9, history: [{ accuracy: 0.1 }], test: { bagAucStudent: 0.8, bags: 4 }, note: 'x' };
    expect(headline(m, /^(accuracy|test\.bagAuc\w*)$/)).toEqual([
      ['accuracy', 0.9],
      ['test.bagAucStudent', 0.8],
    ]);
  });
});

// Every stage script must be in the checkout for the end-to-end run; the test names any that is not.
const absent = STAGE_SCRIPTS.filter(
  (s) => !existsSync(fileURLToPath(new URL(`../../recipes/endoked/${s}`, import.meta.url))),
);

describe.skipIf(absent.length > 0)(
  `npm run endoked -- --quick${absent.length ? ` (skipped: ${absent.join(', ')} not in this checkout)` : ''}`,
  () => {
    let tmp: string;
    beforeAll(() => {
      tmp = mkdtempSync(join(tmpdir(), 'endoked-'));
      mkdirSync(join(tmp, 'run'));
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('runs every stage, writes the report, and reuses every stage on a second run', async () => {
      const out = join(tmp, 'run');
      const argv = ['--quick', '--out', out, '--rounds', '2'];
      const first = (await main(argv))!;
      for (const s of [
        '00-set',
        '01-report-labels',
        '02-mil',
        '03-cam',
        '04-backbone',
        '04-decoder',
        '04-pseudo',
        '05-real-masks',
        '05-box-masks',
      ]) {
        expect(stampOf(join(out, s)), s).not.toBeNull();
      }
      expect(readFileSync(join(out, '03-cam', 'boxes.csv'), 'utf8').split('\n')[0]).toBe(
        'image_path,x0,y0,x1,y1,accepted,reason',
      );
      expect(existsSync(join(out, '04-pseudo', 'train.txt'))).toBe(true);
      expect(first.rounds[0].round).toBe(0);
      expect(first.rounds[0].test!.dice).toBeGreaterThanOrEqual(0);
      for (const s of ['05-real-masks', '05-box-masks']) {
        const m = JSON.parse(readFileSync(join(out, s, 'metrics.json'), 'utf8'));
        expect(m.steps).toBe(2);
        expect(m.test.meanDice).toBeGreaterThanOrEqual(0);
        expect(m.test.meanDice).toBeLessThanOrEqual(1);
      }
      const report = readFileSync(join(out, 'report.md'), 'utf8');
      expect(report).toContain('| real masks (upper bound');
      expect(report).toContain('| CAM boxes filled as masks');
      expect(report).toMatch(/\| round 0: stage 4/);
      expect(report).toMatch(/\| 02-mil \| .*test\.bagAucStudent \d\.\d{4}/);
      expect(report).toMatch(/\| 01-report-labels \| .*accuracy \d\.\d{4}/);
      expect(existsSync(join(out, 'rounds.png'))).toBe(true);

      const w = statSync(join(out, '05-real-masks', 'weights.safetensors')).mtimeMs;
      const second = (await main(argv))!;
      expect(second.rounds).toEqual(first.rounds);
      expect(second.report).toMatch(/Stage times: synthetic-kvasir reused|Stage times: 00-set reused/);
      for (const s of [
        '00-set',
        '01-report-labels',
        '02-mil',
        '03-cam',
        '04-backbone',
        '04-decoder',
        '04-pseudo',
        '05-real-masks',
        '05-box-masks',
      ]) {
        expect(second.report, s).toContain(`${s} reused`);
      }
      expect(statSync(join(out, '05-real-masks', 'weights.safetensors')).mtimeMs).toBe(w);

      // --sam-in-rounds: the rounds in their own folder, round 1 labelled by the decoder; every stage reused.
      const sam = (await main([...argv, '--sam-in-rounds']))!;
      expect(existsSync(join(out, '06-refine-sam', 'round-1', 'labels.csv'))).toBe(true);
      expect(sam.rounds[1].labels).toBe('stage 4: decoder prompted with round-0 predicted boxes');
      // round 0 retrained in its own folder, same result
      expect({ ...sam.rounds[0], trainSeconds: 0 }).toEqual({ ...first.rounds[0], trainSeconds: 0 });
      expect(sam.report).toContain('`npm run endoked -- --quick --sam-in-rounds`');
      expect(sam.report).toContain('04-decoder reused');

      // --stop-after: the stages up to it (all reused here), then a report of their times only.
      const part = (await main([...argv, '--stop-after', '02-mil']))!;
      expect(part.rounds).toEqual([]);
      expect(part.report).toBe(
        '# EndoKED run stopped after 02-mil (--stop-after)\n\n' +
          'Stage times: 00-set reused, 01-report-labels reused, 02-mil reused.\n',
      );
      expect(readFileSync(join(out, 'report.md'), 'utf8')).toBe(part.report);
    }, 1_200_000);
  },
);
