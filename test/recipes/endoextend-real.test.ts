// The EndoExtend24 real-frame path end to end on a tiny subset of ../shared/data (a few frames
// per source x label x split, a few steps): the split file is written once and then reused, groups
// never straddle splits, the tasks drop the other sources' rows through their label mappings, the
// report has every initialisation with intervals and PolypGen's centres, and a second run resumes.
// Skips cleanly where the real data is absent.
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsvTable } from '../../engine/data/layouts.ts';
import { runScript } from '../helpers.ts';

const ROOT = join(__dirname, '..', '..');
const DATA = join(ROOT, '..', 'shared', 'data');
const HAVE = ['capsule-bleeding', 'polypgen-frames', 'kvasir-seg'].every((d) => existsSync(join(DATA, d)));
const RUN_ALL = join(ROOT, 'recipes', 'endoextend', 'run-all.ts');

async function run(args: string[]): Promise<string> {
  const r = await runScript(RUN_ALL, args);
  const out = r.out + r.err;
  if (r.code !== 0) throw new Error(`run-all exited ${r.code}:\n${out.slice(-4000)}`);
  return out;
}

describe.skipIf(!HAVE)('EndoExtend24 on real frames (tiny)', () => {
  it('runs end to end, writes the split once, reports with intervals, and resumes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'endoextend-real-'));
    const out = join(dir, 'run'),
      splitFile = join(dir, 'split.csv');
    const args = [
      '--data',
      'real',
      '--budget',
      'quick',
      '--limit',
      '2',
      '--mim-steps',
      '2',
      '--batch',
      '4',
      '--replicates',
      '100',
      '--out',
      out,
      '--split-file',
      splitFile,
    ];
    const first = await run(args);
    expect(first).toMatch(/wrote the split to/);

    // The split covers every labelled frame and keeps each group (a PolypGen sequence) in one split.
    const { rows } = parseCsvTable(readFileSync(splitFile, 'utf8'), splitFile, ['frame', 'group', 'split']);
    expect(rows.length).toBe(2500);
    const byGroup = new Map<string, Set<string>>();
    for (const r of rows) byGroup.set(r.group, (byGroup.get(r.group) ?? new Set()).add(r.split));
    expect([...byGroup.values()].every((s) => s.size === 1)).toBe(true);
    expect(rows.filter((r) => r.group.startsWith('seq')).length).toBe(750);

    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toMatch(/### Task: capsule\n\n12 frames kept, \d+ rows of other sources dropped/);
    expect(summary).toMatch(/### Task: polypgen\n\n36 frames kept, \d+ rows of other sources dropped/);
    for (const f of [
      'ee24.csv',
      'class_mapping.json',
      'label_mapping.json',
      'mim/mim.safetensors',
      'mim-trained-teacher/mim.safetensors',
      'capsule/roc-all.png',
      'polypgen/roc-all.png',
      'polypgen/confusion-finetune-mim.png',
      'capsule/errors-finetune-mim.png',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    for (const task of ['capsule', 'polypgen'])
      for (const tag of ['finetune-scratch', 'finetune-mim', 'finetune-mim-tt']) {
        const p = readFileSync(join(out, task, tag, 'predictions.csv'), 'utf8')
          .trim()
          .split('\n');
        expect(p.length - 1, `${task}/${tag}`).toBe(task === 'capsule' ? 4 : 12);
      }
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    for (const label of ['random (scratch)', 'MIM, random conv teacher', 'MIM, trained teacher'])
      expect(report).toContain(`| ${label} | `);
    expect(report).toMatch(
      /\| MIM, random conv teacher \| [\d.]+ \[[\d.]+, [\d.]+\] \| [\d.]+ \[[\d.]+, [\d.]+\] \| [+-][\d.]+ \[/,
    );
    for (const c of ['A', 'B', 'C']) expect(report).toContain(`| polypgen-${c} | 2/2 |`);

    // Again: the split file is reused and every stage finds its finished state.
    const again = await run(args);
    expect(again).not.toMatch(/wrote the split/);
    expect(again).toMatch(/resuming MIM pre-training at step 2\/2/);
    expect(again).toMatch(/resuming fine-tuning at epoch 1\/1/);
  }, 900_000); // two runs of every stage: minutes on a busy CPU driver
});
