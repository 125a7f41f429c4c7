// The segmenter recipe (recipes/endoked/05-segmenter.ts) against bad flags, bad files, a shared or
// unwritable --out, a diverging run, other data on resume, and a test image too large for one
// device buffer. Each failure must come at start (or before any checkpoint), name the cause, and
// leave the last good checkpoint as it was.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../../engine/io/safetensors.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { main as segmenterMain } from '../../recipes/endoked/05-segmenter.ts';
import { runScript } from '../helpers.ts';

const RECIPE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'endoked', '05-segmenter.ts');

const run = (args: string[]) => runScript(RECIPE, args);
const stateOf = (path: string) => {
  const p = parseSafetensors(new Uint8Array(readFileSync(path)));
  return {
    meta: JSON.parse(p.metadata!.train_state) as { extra: { step: number; losses: number[] } },
    tensors: p.tensors,
  };
};

describe('recipes/endoked/05-segmenter guards', () => {
  let tmp: string, data: string, other: string;
  const common = (out: string, d = data) => ['--data', d, '--size', '64', '--batch-size', '4', '--out', out];
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'segmenter-guards-'));
    data = join(tmp, 'data');
    other = join(tmp, 'other');
    await writePolypSet(data, 20, { seed: 3, width: 64, height: 64 });
    await writePolypSet(other, 20, { seed: 4, width: 64, height: 64 }); // same size, other split and pixels
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('rejects out-of-range flags and a size not a multiple of 32, naming them, before touching --out', async () => {
    const out = join(tmp, 'never');
    const cases: [string[], RegExp][] = [
      [['--steps', '0'], /--steps "0" is out of range: it must be ≥ 1/],
      [['--steps', '-3'], /--steps "-3" is out of range/],
      [['--lr', '0'], /--lr "0" is out of range: it must be > 0/],
      [['--weight-decay', '-1'], /--weight-decay "-1" is out of range/],
      [['--clip', '0'], /--clip "0" is out of range/],
      [['--threshold', '1.5'], /--threshold "1\.5" is out of range/],
      [['--ckpt-every', '0'], /--ckpt-every "0" is out of range/],
      [['--batch-size', '2.5'], /--batch-size "2\.5" is not a whole number/],
      [['--size', '100'], /--size 100 is not a multiple of 32 \(Polyp-PVT's stride\): use --size 96 or 128/],
    ];
    // In process: main() rejects before it touches the GPU or --out.
    for (const [args, re] of cases)
      await expect(segmenterMain([...common(out), ...args]), args.join(' ')).rejects.toThrow(re);
    // As a command: one line naming the flag, exit 1, no stack trace.
    const r = await run([...common(out), '--size', '100']);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(
      "recipes/endoked/05-segmenter.ts: --size 100 is not a multiple of 32 (Polyp-PVT's stride): use --size 96 or 128",
    );
    expect(existsSync(out)).toBe(false);
  }, 120_000);

  it('an unwritable --out fails at start, naming it', async () => {
    writeFileSync(join(tmp, 'a-file'), 'x');
    const out = join(tmp, 'a-file', 'run');
    const r = await run([...common(out), '--steps', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--out ".*a-file\/run" is not writable/);
    expect(r.out).not.toMatch(/training steps/);
  }, 60_000);

  it('a second run on a locked --out stops naming the owner; partial files of killed writers are removed', async () => {
    const out = join(tmp, 'locked');
    const sleeper = spawn('sleep', ['60']);
    try {
      mkdirSync(out);
      writeFileSync(
        join(out, '.run.lock'),
        JSON.stringify({ pid: sleeper.pid, script: 'recipes/endoked/05-segmenter.ts', started: 'now' }),
      );
      const r = await run([...common(out), '--steps', '1']);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`is in use by another run: pid ${sleeper.pid}`);
    } finally {
      sleeper.kill();
    }
    // Owner gone: taken over, and the temporaries of dead writers are cleaned.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(out, '.run.lock'), JSON.stringify({ pid: dead, script: 'x', started: 'then' }));
    writeFileSync(join(out, `.state.safetensors.tmp-${dead}`), 'partial');
    const r = await run([...common(out), '--steps', '1', '--check-data', 'headers']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/taking over .*\.run\.lock: its owner, pid \d+ .* is no longer running/);
    expect(r.out).toMatch(/removed 1 partial file/);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  }, 120_000);

  it('names every bad file of a split at start', async () => {
    const bad = join(tmp, 'bad');
    cpSync(data, bad, { recursive: true });
    const train = readFileSync(join(bad, 'train.txt'), 'utf8').trim().split('\n');
    const img = join(bad, 'images', `${train[3]}.jpg`),
      mask = join(bad, 'masks', `${train[7]}.png`);
    truncateSync(img, Math.floor(statSync(img).size / 2));
    writeFileSync(mask, 'garbage');
    const out = join(tmp, 'bad-run');
    const r = await run([...common(out, bad), '--steps', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/2 bad file\(s\) in the train split/);
    expect(r.err).toContain(img);
    expect(r.err).toContain(mask);
    expect(r.out).not.toMatch(/training steps/);
  }, 60_000);

  it('a diverging run stops before any checkpoint, keeping the last good one; other data is not resumed', async () => {
    const out = join(tmp, 'diverge');
    const first = await run([...common(out), '--steps', '1']);
    expect(first.code, first.err).toBe(0);
    const state = readFileSync(join(out, 'state.safetensors'));
    const weights = readFileSync(join(out, 'weights.safetensors'));
    // lr 1e6 with weight decay 1 blows the weights up within the first multi-scale step.
    const r = await run([...common(out), '--steps', '3', '--lr', '1e6', '--weight-decay', '1', '--ckpt-every', '1']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/continuing with --lr 1000000 --weight-decay 1/);
    expect(r.err).toMatch(
      new RegExp(
        String.raw`at rate [\d.]+ is (NaN|-?Infinity).* at step 1: ` +
          String.raw`no checkpoint was written for this step, so the last good one is kept; lower --lr`,
      ),
    );
    expect(readFileSync(join(out, 'state.safetensors')).equals(state)).toBe(true);
    expect(readFileSync(join(out, 'weights.safetensors')).equals(weights)).toBe(true);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
    for (const [k, t] of Object.entries(stateOf(join(out, 'state.safetensors')).tensors)) {
      if (t.dtype === 'F32') expect((t.data as Float32Array).every(Number.isFinite), k).toBe(true);
    }
    // Same number of images, other data: refused, naming both folders.
    const o = await run([...common(out, other), '--steps', '2']);
    expect(o.code).toBe(1);
    expect(o.err).toMatch(
      new RegExp(
        `state\\.safetensors was trained on other data: data ${data} \\(train: 18 ids.*` +
          `this run has data ${other} \\(train: 18 ids`,
      ),
    );
    expect(readFileSync(join(out, 'state.safetensors')).equals(state)).toBe(true);

    // A state missing a field, and one whose train_state JSON is torn: errors name the file and what is wrong.
    const rewrite = (dir: string, edit: (meta: string) => string) => {
      const p = parseSafetensors(new Uint8Array(state));
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, 'state.safetensors'),
        serializeSafetensors({ ...p.tensors } as Record<string, SafetensorsInput>, {
          train_state: edit(p.metadata!.train_state),
        }),
      );
      return join(dir, 'state.safetensors');
    };
    const noLosses = rewrite(join(tmp, 'no-losses'), (m) => {
      const j = JSON.parse(m);
      delete j.extra.losses;
      return JSON.stringify(j);
    });
    const torn = rewrite(join(tmp, 'torn'), (m) => m.slice(0, 40));
    const [a, b] = await Promise.all([
      run([...common(dirname(noLosses)), '--steps', '2']),
      run([...common(dirname(torn)), '--steps', '2']),
    ]);
    expect(a.code).toBe(1);
    expect(a.err).toContain(
      `${noLosses}: not a usable training state of this recipe: ` +
        `extra.losses should be a list of numbers but is missing`,
    );
    expect(b.code).toBe(1);
    expect(b.err).toContain(`${torn}: the train_state metadata is not valid JSON`);
  }, 240_000);

  it('evaluates a test image over the device buffer limit (5800x5800 = 33.6 Mpx)', async () => {
    const big = join(tmp, 'big');
    cpSync(data, big, { recursive: true });
    const id = readFileSync(join(big, 'test.txt'), 'utf8').trim().split('\n')[0];
    const S = 5800;
    await sharp(join(big, 'images', `${id}.jpg`))
      .resize(S, S, { kernel: 'linear' })
      .jpeg({ quality: 80 })
      .toFile(join(big, 'images', `${id}.big.jpg`));
    await sharp(join(big, 'masks', `${id}.png`))
      .resize(S, S, { kernel: 'nearest' })
      .png()
      .toFile(join(big, 'masks', `${id}.big.png`));
    cpSync(join(big, 'images', `${id}.big.jpg`), join(big, 'images', `${id}.jpg`));
    cpSync(join(big, 'masks', `${id}.big.png`), join(big, 'masks', `${id}.png`));
    rmSync(join(big, 'images', `${id}.big.jpg`));
    rmSync(join(big, 'masks', `${id}.big.png`));
    const out = join(tmp, 'big-run');
    const r = await run([...common(out, big), '--steps', '1', '--check-data', 'headers']);
    expect(r.code, r.err.slice(-2000)).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const row = m.perImage.find((p: { id: string }) => p.id === id);
    expect(Number.isFinite(row.dice) && row.dice >= 0 && row.dice <= 1).toBe(true);
  }, 240_000);
});
