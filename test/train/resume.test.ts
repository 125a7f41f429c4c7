// A run killed at any moment resumes to the same state: the loss curve of a run that was
// SIGKILLed mid-training and restarted from its checkpoint equals an uninterrupted run's.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restoreTrainState, weightsBytes, loadWeights } from '../../engine/train/checkpoint.ts';
import { Linear } from '../../engine/nn/layers.ts';

const CHILD = join(__dirname, 'resume-child.ts');
const STEPS = 24;

function run(ckpt: string, killAfterSteps?: number): Promise<{ lines: string[]; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ckpt, String(STEPS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (d) => {
      out += d;
      const done = out.split('\n').filter((l) => l.startsWith('step ')).length;
      if (killAfterSteps !== undefined && !killed && done >= killAfterSteps) {
        // Let it get into the next step (possibly mid checkpoint write) before the kill.
        setTimeout(
          () => {
            killed = true;
            child.kill('SIGKILL');
          },
          5 + Math.floor(Math.random() * 40),
        );
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`resume-child exited ${code}:\n${err}`));
      else resolve({ lines: out.split('\n').filter(Boolean), killed: signal === 'SIGKILL' });
    });
  });
}

const lossesOf = (lines: string[]) => JSON.parse(lines.find((l) => l.startsWith('DONE '))!.slice(5)) as number[];

describe('training-state checkpoints', () => {
  it('a run killed mid-training resumes to exactly the uninterrupted loss curve', async () => {
    const a = await run(join(mkdtempSync(join(tmpdir(), 'ckpt-a-')), 'state.safetensors'));
    const reference = lossesOf(a.lines);
    expect(reference).toHaveLength(STEPS);
    expect(reference[STEPS - 1]).toBeLessThan(reference[0]);

    const dir = mkdtempSync(join(tmpdir(), 'ckpt-b-'));
    const ckpt = join(dir, 'state.safetensors');
    const first = await run(ckpt, 9);
    expect(first.killed).toBe(true);
    const second = await run(ckpt);
    const resumedFrom = Number(second.lines.find((l) => l.startsWith('step '))!.split(' ')[1]) - 1;
    expect(resumedFrom).toBeGreaterThanOrEqual(9);
    expect(resumedFrom).toBeLessThan(STEPS);
    expect(lossesOf(second.lines)).toEqual(reference);
    // No temporary file is left next to the checkpoint once a write completed.
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('rejects a corrupt file and a weights-only file, naming the file', async () => {
    const bogus = join(mkdtempSync(join(tmpdir(), 'ckpt-c-')), 'bogus.safetensors');
    writeFileSync(bogus, 'not a safetensors file at all');
    expect(() => restoreTrainState(new Uint8Array(readFileSync(bogus)), { model: new Linear(2, 2) }, bogus)).toThrow(
      new RegExp(`^${bogus}: `),
    );
    const m = new Linear(2, 2);
    const bytes = await weightsBytes(m);
    expect(() => restoreTrainState(bytes, { model: m }, 'w.safetensors')).toThrow(
      /w\.safetensors: not a training-state checkpoint/,
    );
    // A weights file round-trips, and a mismatched model is refused with the key and shapes.
    const m2 = new Linear(2, 2);
    loadWeights(m2, bytes);
    expect(Array.from(await m2.weight.data())).toEqual(Array.from(await m.weight.data()));
    expect(() => loadWeights(new Linear(3, 2), bytes, { source: 'w.safetensors' })).toThrow(
      /^w\.safetensors: loadStateDict: [^]*weight[^]*\[2, 3\]/,
    );
  });
});
