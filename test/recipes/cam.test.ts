// The EndoKED CAM recipe (recipes/endoked/03-cam.ts) end to end on a tiny synthetic patient set
// with --scores-from-truth and, separately, a stage-2-style frame_scores.csv: it trains a few steps
// of a tiny ToCo model, writes boxes.csv per the contract, overlays, weights, metrics, state and
// the loss plot; a second invocation resumes; a non-finite loss stops before any checkpoint; bad
// flags and files are errors that name them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { parseCsvTable, serialiseCsv } from '../../engine/data/index.ts';
import { writeReportSet } from '../../runtime-node/synth.ts';
import { weightsBytes, noGrad, fill, copy_, Generator } from '../../engine/index.ts';
import { TocoCam, tocoConfig } from '../../models/toco.ts';

const RECIPE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'endoked', '03-cam.ts');
const REASONS = new Set(['', 'touches-border', 'area-too-small', 'area-too-large', 'too-many-components', 'no-foreground']);

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RECIPE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => resolve({ code, out, err }));
  });
}
const trainStep = (path: string) => JSON.parse(parseSafetensors(new Uint8Array(readFileSync(path))).metadata!.train_state).extra.step as number;
/** Patients of the test split (reports.csv `split`); stage 3 trains on the others only. */
const testPatients = (set: string) => new Set(parseCsvTable(readFileSync(join(set, 'reports.csv'), 'utf8'), 'reports.csv').rows.filter((r) => r.split === 'test').map((r) => r.patient_id));
const TINY = ['--size', '32', '--patch', '8', '--dim', '16', '--depth', '2', '--heads', '1', '--batch-size', '4', '--cam-scales', '1,0.5', '--eval-batch', '8', '--overlays', '3'];

describe('recipes/endoked/03-cam', () => {
  let tmp: string, set: string, cache: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cam-'));
    set = join(tmp, 'set');
    cache = join(tmp, 'cache');
    await writeReportSet(set, 8, { seed: 4, width: 48, height: 48 });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('trains, writes boxes.csv / overlays / weights / metrics / loss plot, and resumes', async () => {
    const out = join(tmp, 'run');
    const common = ['--set', set, '--scores-from-truth', '--out', out, '--cache', cache, ...TINY];
    const first = await run([...common, '--steps', '2']);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/DEVELOPMENT AID/);
    for (const f of ['boxes.csv', 'cam.safetensors', 'state.safetensors', 'metrics.json', 'loss.png']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(trainStep(join(out, 'state.safetensors'))).toBe(2);

    // boxes.csv: one row per MIL positive (true polyp frames of positive train-split patients here), the contract's columns.
    const held = testPatients(set);
    const frames = parseCsvTable(readFileSync(join(set, 'frames.csv'), 'utf8'), 'frames.csv').rows;
    const positives = frames.filter((r) => r.polyp === '1' && !held.has(r.patient_id)).map((r) => join(set, r.frame_path)).sort();
    expect(positives.length).toBeGreaterThan(0);
    const { header, rows } = parseCsvTable(readFileSync(join(out, 'boxes.csv'), 'utf8'), 'boxes.csv');
    expect(header).toEqual(['image_path', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason']);
    expect(rows.map((r) => r.image_path).sort()).toEqual(positives);
    for (const r of rows) {
      expect(REASONS.has(r.reason), r.reason).toBe(true);
      expect(r.accepted === '1').toBe(r.reason === '');
      if (r.reason !== 'no-foreground') {
        const [x0, y0, x1, y1] = [r.x0, r.y0, r.x1, r.y1].map(Number);
        expect(0 <= x0 && x0 < x1 && x1 <= 48 && 0 <= y0 && y0 < y1 && y1 <= 48, JSON.stringify(r)).toBe(true);
      }
    }
    expect(readdirSync(join(out, 'cams')).length).toBe(Math.min(3, positives.length));

    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(m.developmentAid).toMatch(/TRUE frame labels/);
    expect(m.steps).toBe(2);
    expect(m.train.milPositivePrecision).toBe(1);
    expect(m.milPositives.images).toBe(positives.length);
    for (const r of m.perImage) {
      expect(r.iou).toBeGreaterThanOrEqual(0); // synthetic frames have masks: IoU is measured
      expect(r.iou).toBeLessThanOrEqual(1);
    }

    const second = await run([...common, '--steps', '3']);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(/resumed from .* at step 2/);
    expect(trainStep(join(out, 'state.safetensors'))).toBe(3);
    expect(JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).steps).toBe(3);
  }, 300_000);

  it('reads a stage-2 frame_scores.csv: positives are student >= threshold in positive bags, negatives the lowest scores', async () => {
    const frames = parseCsvTable(readFileSync(join(set, 'frames.csv'), 'utf8'), 'frames.csv').rows;
    const bag = new Map<string, number>();
    for (const r of frames) bag.set(r.patient_id, Math.max(bag.get(r.patient_id) ?? 0, Number(r.polyp)));
    // Scores: every true polyp frame 0.9 except the first of the train split (0.7: below 0.8, not selected), normal frames 0.1.
    const held = testPatients(set);
    let first = true;
    const scoreRows = frames.map((r) => {
      const s = r.polyp === '1' ? (first && !held.has(r.patient_id) ? ((first = false), 0.7) : 0.9) : 0.1;
      return [join(set, r.frame_path), r.patient_id, bag.get(r.patient_id)!, s, s, s];
    });
    const scores = join(tmp, 'frame_scores.csv');
    writeFileSync(scores, serialiseCsv([['frame_path', 'patient_id', 'bag_label', 'teacher1', 'teacher2', 'student'], ...scoreRows]));
    const out = join(tmp, 'scored');
    const r = await run(['--set', set, '--scores', scores, '--out', out, '--cache', cache, ...TINY, '--steps', '1', '--no-grad-cam']);
    expect(r.code, r.err).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(m.developmentAid).toBeNull();
    expect(m.train.milPositives).toBe(frames.filter((x) => x.polyp === '1' && !held.has(x.patient_id)).length - 1);
    expect(m.kvasirTrain.gradCam ?? null).toBeNull();
  }, 300_000);

  it('stops on a non-finite loss before writing any checkpoint', async () => {
    // Finite encoder weights whose token sums overflow f32 (pos_embed 3e38: LayerNorm's mean is
    // inf, then inf - inf) make the first loss NaN; loadWeights refuses NaN weights outright.
    const model = new TocoCam(tocoConfig('mu', { imgSize: 32, patchSize: 8, embedDim: 16, depth: 2, numHeads: 1 }), { generator: new Generator(1) });
    noGrad(() => { const big = fill([1, 17, 16], 3e38); copy_(model.encoder.pos_embed, big, 'test'); big.dispose(); });
    const init = join(tmp, 'nan.safetensors');
    writeFileSync(init, await weightsBytes(model.encoder));
    model.dispose();
    const out = join(tmp, 'nan');
    const r = await run(['--set', set, '--scores-from-truth', '--out', out, '--cache', cache, ...TINY, '--steps', '2', '--init', init]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/loss became (NaN|-?Infinity) at step 0.*before any checkpoint/);
    expect(existsSync(join(out, 'state.safetensors'))).toBe(false);
  }, 300_000);

  it('bad flags and files fail at start naming the flag', async () => {
    const a = await run(['--set', join(tmp, 'nowhere'), '--scores-from-truth', '--out', join(tmp, 'x')]);
    expect(a.code).not.toBe(0);
    expect(a.err).toMatch(/--set: .*nowhere.* has no frames\.csv/);
    const b = await run(['--set', set, '--out', join(tmp, 'x')]);
    expect(b.err).toMatch(/--scores: give the stage-2 frame_scores\.csv/);
    const c = await run(['--set', set, '--scores-from-truth', '--size', '30', '--patch', '8']);
    expect(c.err).toMatch(/--size: 30 is not a multiple of --patch 8/);
  }, 120_000);
});
