// Guards of the EndoExtend24 training recipes (02-04): flag ranges, a diverging MIM run that stops
// before any checkpoint (keeping the last good one), and initial weights holding NaN refused.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../../engine/io/safetensors.ts';
import { weightsBytes } from '../../engine/index.ts';
import { writeFileSync } from 'node:fs';
import { Eva02 } from '../../models/eva02.ts';
import { modelConfig } from '../../recipes/endoextend/kit.ts';
import { main as buildDataset } from '../../recipes/endoextend/01-build-dataset.ts';
import { main as mimMain } from '../../recipes/endoextend/02-mim-pretrain.ts';
import { main as ee24Main } from '../../recipes/endoextend/03-supervised-pretrain.ts';
import { main as finetuneMain } from '../../recipes/endoextend/04-finetune-ce24.ts';

const DIR = join(__dirname, '..', '..', 'recipes', 'endoextend');
function run(script: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(DIR, script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('EndoExtend24 recipe guards', () => {
  let out: string;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'endoextend-guards-'));
    await buildDataset(['--out', out, '--ee24Frames', '60', '--ce24Frames', '60', '--ce24TestFrames', '20']);
  }, 180_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('rejects out-of-range flags, naming them, before any work', async () => {
    await expect(mimMain(['--out', out, '--steps', '0'])).rejects.toThrow(
      /02-mim-pretrain\.ts: --steps "0" is out of range: it must be ≥ 1/,
    );
    await expect(mimMain(['--out', out, '--lr', '-1'])).rejects.toThrow(/--lr "-1" is out of range: it must be > 0/);
    await expect(mimMain(['--out', out, '--maskRatio', '1'])).rejects.toThrow(/--mask-ratio "1" is out of range/);
    await expect(mimMain(['--out', out, '--size', 'xl'])).rejects.toThrow(/--size "xl" is not one of mu, ti, s, b, l/);
    await expect(ee24Main(['--out', out, '--epochs', '-2'])).rejects.toThrow(
      /03-supervised-pretrain\.ts: --epochs "-2" is out of range/,
    );
    await expect(finetuneMain(['--out', out, '--batch', '2.5'])).rejects.toThrow(
      /04-finetune-ce24\.ts: --batch "2\.5" is not a whole number/,
    );
    await expect(finetuneMain(['--out', out, '--decay', '0'])).rejects.toThrow(/--decay "0" is out of range/);
    await expect(finetuneMain(['--out', out, '--optimiser', 'sgd'])).rejects.toThrow(
      /04-finetune-ce24\.ts: .*optimiser/,
    );
    expect(existsSync(join(out, 'mim'))).toBe(false);
  });

  it('a diverging MIM run stops before a checkpoint, keeping the last good one', async () => {
    // lr 1e6 with weight decay 1 multiplies the weights by about -1e6 a step: they overflow in a few.
    const r = await run('02-mim-pretrain.ts', [
      '--out',
      out,
      '--steps',
      '12',
      '--batch',
      '8',
      '--warmup',
      '1',
      '--kvasir',
      '',
      '--lr',
      '1e6',
      '--weightDecay',
      '1',
      '--checkpointEvery',
      '1',
    ]);
    expect(r.code).toBe(1);
    const m = new RegExp(
      String.raw`(loss|gradient norm) is (NaN|-?Infinity).* at step (\d+): ` +
        String.raw`no checkpoint was written for this step, so the last good one is kept; lower --lr`,
    ).exec(r.err);
    expect(m, r.err.slice(-2000)).not.toBeNull();
    const failedAt = Number(m![3]);
    const dir = join(out, 'mim');
    expect(existsSync(join(dir, 'mim.safetensors'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
    if (failedAt === 0) {
      expect(existsSync(join(dir, 'state.safetensors'))).toBe(false);
      return;
    }
    const p = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'state.safetensors'))));
    expect(JSON.parse(p.metadata!.train_state).extra.step).toBe(failedAt);
    for (const [k, t] of Object.entries(p.tensors))
      if (t.dtype === 'F32') expect((t.data as Float32Array).every(Number.isFinite), k).toBe(true);
  }, 180_000);

  it('a diverging fine-tuning run stops at the step, not in the metrics after a NaN epoch', async () => {
    const r = await run('04-finetune-ce24.ts', [
      '--out',
      out,
      '--init',
      'none',
      '--optimizer',
      'adamw',
      '--lr',
      '1e6',
      '--weightDecay',
      '1',
      '--epochs',
      '1',
      '--batch',
      '4',
      '--tag',
      'diverge',
    ]);
    expect(r.code).toBe(1);
    expect(r.err, r.err.slice(-2000)).toMatch(
      new RegExp(
        String.raw`(loss|gradient norm) is (NaN|-?Infinity).* at step \d+: ` +
          String.raw`no checkpoint was written for this step, so the last good one is kept; lower --lr`,
      ),
    );
    expect(r.err).not.toMatch(/rocAuc/);
    for (const f of ['state.safetensors', 'best.safetensors', 'history.json'])
      expect(existsSync(join(out, 'diverge', f)), f).toBe(false);
  }, 180_000);

  it('refuses initial weights holding NaN, naming the file and the tensor', async () => {
    const model = new Eva02(modelConfig('mu', 10));
    const bytes = await weightsBytes(model);
    model.dispose();
    const p = parseSafetensors(bytes);
    const tensors: Record<string, SafetensorsInput> = { ...p.tensors };
    const w = Float32Array.from(tensors['blocks.0.mlp.fc2.weight'].data as Float32Array);
    w[5] = NaN;
    tensors['blocks.0.mlp.fc2.weight'] = { ...tensors['blocks.0.mlp.fc2.weight'], data: w };
    const file = join(out, 'nan-init.safetensors');
    writeFileSync(file, serializeSafetensors(tensors, p.metadata ?? {}));
    const r = await run('04-finetune-ce24.ts', [
      '--out',
      out,
      '--init',
      file,
      '--epochs',
      '1',
      '--batch',
      '16',
      '--tag',
      'nan-init',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `${file}: the checkpoint is broken: NaN/Infinity in 1 tensor(s): blocks.0.mlp.fc2.weight (1 of`,
    );
    expect(existsSync(join(out, 'nan-init', 'state.safetensors'))).toBe(false);
  }, 120_000);
});
