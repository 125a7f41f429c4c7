// The CE24 fine-tuning loop learns: on a small set whose three classes a model can tell apart
// (frames tinted red, green or blue under the same random texture, through the recipe's own
// augmentations), a µ EVA-02 from scratch reaches a high validation macro AUC within a few epochs.
// The synthetic 10-class CE24 set of run-all --quick is too hard to show learning at a test's budget
// (test macro AUC 0.52-0.66 across seeds, training loss 2.30 -> 2.0-2.2 after 10 epochs), so this
// set checks the loop itself: labels, loss, sampler, optimiser and the validation metrics. With
// --lr 1e-7 (a loop that does not learn) the loss stays at 1.099 and the AUC at 0.50-0.67: the test fails.
import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../engine/index.ts';
import { main as finetune } from '../../recipes/endoextend/04-finetune-ce24.ts';

const CLASSES = ['red', 'green', 'blue'];

async function writeSet(out: string, perClass: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const rows = ['dataset,patient_id,frame_path,proposed_name,class,fold,original_class'];
  for (const [k, name] of CLASSES.entries()) {
    mkdirSync(join(out, 'frames', name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(48 * 48 * 3);
      for (let p = 0; p < 48 * 48; p++) {
        const v = rng.uniform(40, 160);
        for (let c = 0; c < 3; c++) px[p * 3 + c] = Math.round(c === k ? v + 90 : v);
      }
      const rel = `frames/${name}/${name}-${i}.png`;
      await sharp(px, { raw: { width: 48, height: 48, channels: 3 } })
        .png()
        .toFile(join(out, rel));
      rows.push(`toy,${name}-p${i},${rel},${name}-${i}.png,${name},${i % 5},${name}`);
    }
  }
  writeFileSync(join(out, 'ce24-trainval.csv'), rows.join('\n') + '\n');
  writeFileSync(join(out, 'class_mapping.json'), JSON.stringify(Object.fromEntries(CLASSES.map((c, k) => [c, k]))));
}

describe('CE24 fine-tuning', () => {
  it('learns a separable three-class set from scratch', async () => {
    const seed = Number(process.env.FINETUNE_LEARNS_SEED ?? 0);
    const out = mkdtempSync(join(tmpdir(), 'finetune-learns-'));
    await writeSet(out, 15, seed);
    const args = ['--out', out, '--init', 'none', '--epochs', '4', '--batch', '8', '--seed', String(seed)];
    await finetune([...args, '--tag', 'toy']);
    const { history } = JSON.parse(readFileSync(join(out, 'toy', 'history.json'), 'utf8')) as {
      history: { loss: number; macroAuc: number }[];
    };
    const last = history[history.length - 1];
    const trace = history.map((h) => `${h.loss.toFixed(3)}/${h.macroAuc.toFixed(3)}`).join(' ');
    // Training loss per epoch, chance ln 3 = 1.10. Measured (FINETUNE_LEARNS_SEED=0/1/2): 1.021 -> 0.388,
    // 1.041 -> 0.461, 1.023 -> 0.403; validation macro AUC 1.000 at every epoch of all three.
    expect(last.loss, trace).toBeLessThan(0.7);
    expect(last.macroAuc, trace).toBeGreaterThan(0.9);
  }, 600_000);
});
