// EndoKED stage 7 (recipes/endoked/07-optical-biopsy.ts, models/optical-biopsy.ts): encoder
// weights round-trip under the `encoder.` prefix (a saved-then-loaded encoder gives identical
// features; a file of another architecture is refused); the recipe learns on a tiny synthetic
// pathology set (test frame AUC well above chance), compares --init with scratch in one run,
// resumes from its training state, stops on a non-finite loss before checkpointing it, and
// names a bad flag.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor, manualSeed, noGrad, serializeSafetensors } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { OpticalBiopsyNet, encoderBytes, loadEncoder } from '../../models/optical-biopsy.ts';
import { MIL, MilEncoder } from '../../models/mil.ts';
import { binaryReport, groupScores, sensSpec, youdenThreshold } from '../../recipes/endoked/biopsy-metrics.ts';
import { writePathologySet } from '../../runtime-node/synth.ts';
import { runScript } from '../helpers.ts';

const RECIPE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'endoked', '07-optical-biopsy.ts');

const run = (args: string[]) => runScript(RECIPE, args);
const stateOf = (path: string) => {
  const p = parseSafetensors(new Uint8Array(readFileSync(path)));
  return { extra: JSON.parse(p.metadata!.train_state).extra as { step: number; losses: number[] }, tensors: p.tensors };
};
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
// Each recipe test spawns the recipe (device start-up, decoding, training) several times: minutes
// on a busy two-core CPU driver, hence the per-test timeouts below.

describe('optical-biopsy model', () => {
  it('saves the encoder under encoder.* and a loaded copy gives identical features', async () => {
    manualSeed(1);
    const a = new MilEncoder(MIL.mu);
    manualSeed(2);
    const b = new MilEncoder(MIL.mu);
    const bytes = await encoderBytes(a);
    const keys = Object.keys(parseSafetensors(bytes).tensors);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith('encoder.features.'))).toBe(true);
    a.eval();
    b.eval();
    const x = tensor(
      Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)),
      [2, 3, 32, 32],
    );
    const fa = await noGrad(() => a.forward(x)).data();
    expect(await noGrad(() => b.forward(x)).data()).not.toEqual(fa);
    expect(loadEncoder(b, bytes, 'enc.safetensors')).toBe(keys.length);
    expect(Array.from(await noGrad(() => b.forward(x)).data())).toEqual(Array.from(fa));
    // The classifier's keys: encoder.* and the reference's head names.
    const net = new OpticalBiopsyNet(b, b.outDim, 2);
    const netKeys = [...net.stateDict().keys()];
    expect(netKeys.filter((k) => k.startsWith('encoder.')).sort()).toEqual([...keys].sort());
    expect(netKeys.filter((k) => k.startsWith('head.'))).toEqual([
      'head.classifier.0.weight',
      'head.classifier.0.bias',
      'head.classifier.1.weight',
      'head.classifier.1.bias',
      'head.classifier.1.running_mean',
      'head.classifier.1.running_var',
      'head.classifier.1.num_batches_tracked',
      'head.classifier.3.weight',
      'head.classifier.3.bias',
    ]);
    expect((await noGrad(() => net.forward(x)).data()).length).toBe(4);
  });

  it('refuses a file without encoder.* keys or of another architecture, naming the file', async () => {
    const enc = new MilEncoder(MIL.mu);
    const none = serializeSafetensors({ 'head.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    expect(() => loadEncoder(enc, none, 'x.safetensors')).toThrow(
      new RegExp(
        String.raw`^x\.safetensors: [\s\S]*Missing key\(s\)[\s\S]*no keys starting with "encoder\."\): ` +
          String.raw`pass the encoder\.safetensors written by recipes\/endoked\/02-mil\.ts$`,
      ),
    );
    const other = await encoderBytes(new MilEncoder(MIL.small));
    expect(() => loadEncoder(enc, other, 'y.safetensors')).toThrow(
      new RegExp(
        String.raw`^y\.safetensors: [\s\S]*size mismatch for features\.\S+: ` +
          String.raw`copying a param with shape \[\d+(, \d+)*\] from checkpoint, ` +
          String.raw`the shape in current model is \[\d+(, \d+)*\]`,
      ),
    );
  });
});

describe('optical-biopsy metrics', () => {
  it('chooses the Youden threshold, and aggregates frames per patient by the mean', () => {
    const y = [0, 0, 0, 1, 1, 1],
      s = [0.1, 0.4, 0.35, 0.8, 0.3, 0.9];
    expect(youdenThreshold(y, s)).toBe(0.8);
    expect(sensSpec(y, s, 0.8)).toEqual({ sensitivity: 2 / 3, specificity: 1 });
    expect(sensSpec(y, s, 0.3)).toEqual({ sensitivity: 1, specificity: 1 / 3 });
    const r = binaryReport(y, s, 'youden', 0.5, { labels: [0, 1], scores: [0.2, 0.3] });
    expect(r.threshold).toBe(0.3);
    expect(r.fixed).toEqual({ threshold: 0.5, sensitivity: 2 / 3, specificity: 1 });
    const g = groupScores(
      [
        { label: 0, p: 'a' },
        { label: 1, p: 'a' },
        { label: 0, p: 'b' },
      ],
      [0.2, 0.6, 0.1],
      (x) => x.p,
    );
    expect(g).toEqual({ ids: ['a', 'b'], labels: [1, 0], scores: [0.4, 0.1] });
  });
});

describe('recipes/endoked/07-optical-biopsy', () => {
  let tmp: string, data: string, init: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'biopsy-'));
    data = join(tmp, 'set');
    await writePathologySet(data, 40, { seed: 0, width: 64, height: 64 });
    manualSeed(7);
    init = join(tmp, 'encoder.safetensors');
    // A stand-in for stage 2's output: a MIL-µ encoder of other widths, its config in the metadata
    // (the recipe must build that architecture for both arms).
    const config = { ...MIL.mu, channels: [8, 16, 24] };
    writeFileSync(
      init,
      await encoderBytes(new MilEncoder(config), { model: 'endoked_mil_encoder', config: JSON.stringify(config) }),
    );
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const common = () => ['--data', data, '--batch-size', '16', '--lr', '0.05'];

  it('learns (test frame AUC well above chance) and compares --init with scratch in one run', async () => {
    const out = join(tmp, 'cmp');
    const r = await run([...common(), '--steps', '60', '--compare', '--init', init, '--out', out]);
    expect(r.code, r.err).toBe(0);
    const m = json(join(out, 'metrics.json'));
    expect(Object.keys(m.arms)).toEqual(['mil-init', 'scratch']);
    expect(m.arms['mil-init'].init).toBe(init);
    expect(m.arms.scratch.init).toBeNull();
    expect(r.out).toMatch(/\[mil-init\] encoder from .*encoder\.safetensors \(\d+ tensors\)/);
    expect(r.out).toMatch(/encoder: MilEncoder 8-16-24 x1 at 32²/);
    for (const arm of ['mil-init', 'scratch']) {
      const w = parseSafetensors(new Uint8Array(readFileSync(join(out, arm, 'encoder.safetensors'))));
      expect(w.tensors['encoder.features.0.weight'].shape).toEqual([8, 3, 3, 3]);
      expect(JSON.parse(w.metadata!.config).channels).toEqual([8, 16, 24]);
    }
    for (const arm of ['mil-init', 'scratch']) {
      const t = m.arms[arm].test;
      expect(m.arms[arm].steps).toBe(60);
      expect(t.frame.auc, arm).toBeGreaterThan(0.65);
      for (const lvl of ['frame', 'polyp', 'patient']) {
        expect(t[lvl].auc).toBeGreaterThanOrEqual(0);
        expect(t[lvl].auc).toBeLessThanOrEqual(1);
        expect(t[lvl].sensitivity).toBeGreaterThanOrEqual(0);
        expect(t[lvl].specificity).toBeLessThanOrEqual(1);
        expect(t[lvl].chosenBy).toBe('youden');
      }
      expect(t.patient.n).toBeLessThan(t.polyp.n + 1);
      expect(t.polyp.n).toBeLessThan(t.frame.n);
      for (const f of [
        'weights.safetensors',
        'encoder.safetensors',
        'state.safetensors',
        'predictions.csv',
        'loss.png',
        'metrics.json',
      ])
        expect(existsSync(join(out, arm, f)), f).toBe(true);
    }
    // The two arms differ only in the encoder's start, so their results differ.
    expect(m.arms['mil-init'].finalLoss).not.toBe(m.arms.scratch.finalLoss);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/\| mil-init .*\| 60 \| 0\.\d{3} \|/);
    expect(report).toMatch(/\| scratch \| 60 \| 0\.\d{3} \|/);
    expect([...readFileSync(join(out, 'roc.png')).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
  }, 600_000);

  it('resumes from its training state, and stops on a non-finite loss before checkpointing it', async () => {
    const out = join(tmp, 'resume');
    const first = await run([...common(), '--steps', '4', '--ckpt-every', '2', '--out', out]);
    expect(first.code, first.err).toBe(0);
    const s1 = stateOf(join(out, 'scratch', 'state.safetensors'));
    expect(s1.extra.step).toBe(4);
    const second = await run([...common(), '--steps', '6', '--ckpt-every', '2', '--out', out]);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(/\[scratch\] resumed from .*state\.safetensors at step 4/);
    const s2 = stateOf(join(out, 'scratch', 'state.safetensors'));
    expect(s2.extra.step).toBe(6);
    expect(s2.extra.losses.slice(0, 4)).toEqual(s1.extra.losses);
    // Settings that change the run are refused on resume.
    const other = await run([...common().slice(0, -1), '0.01', '--steps', '8', '--out', out]);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/written by a run with other settings.*--no-resume/);

    // Adam's first step moves every weight by ±lr: with lr 1e38 the second forward overflows f32.
    const nan = join(tmp, 'nan');
    const bad = await run([
      ...common().slice(0, -2),
      '--optimizer',
      'adam',
      '--lr',
      '1e38',
      '--steps',
      '5',
      '--ckpt-every',
      '1',
      '--out',
      nan,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(
      new RegExp(
        String.raw`\[scratch\] loss is (NaN|Infinity) at step 2: ` +
          String.raw`stopped before writing a checkpoint \(.*state\.safetensors keeps step 1\)`,
      ),
    );
    const s = stateOf(join(nan, 'scratch', 'state.safetensors'));
    expect(s.extra.step).toBe(1);
    expect(s.extra.losses.every(Number.isFinite)).toBe(true);
    expect(existsSync(join(nan, 'metrics.json'))).toBe(false);
  }, 600_000);

  it('names a bad flag or file and the fix', async () => {
    const r1 = await run(['--data', data, '--compare', '--out', join(tmp, 'x')]);
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/--compare needs --init/);
    const r2 = await run(['--data', data, '--init', join(tmp, 'none.safetensors'), '--out', join(tmp, 'x')]);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/--init ".*none\.safetensors" does not exist \(run recipes\/endoked\/02-mil\.ts first/);
    const r3 = await run(['--data', join(tmp, 'no-set'), '--out', join(tmp, 'x')]);
    expect(r3.code).toBe(1);
    expect(r3.err).toMatch(/no-set" does not exist.*--kind pathology/);
    expect(existsSync(join(tmp, 'x'))).toBe(false);
  }, 300_000);
});
