// The segmenter trainings of the EndoKED end-to-end run (run-all.ts; spec §2.6, recipes/endoked/README.md
// stages 5-6), all with the same segmenter budget so that their test Dice compare:
//   rounds         stage-4 pseudo-masks, then re-labelled rounds (06-refine.ts)
//   05-real-masks  the test set's real train masks: the upper bound
//   05-box-masks   stage 3's accepted boxes filled in as masks: what the decoder adds over its prompts
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCsvTable } from '../../engine/data/index.ts';
import { trainStepArgs } from '../../runtime-node/amp.ts';
import { imageSize } from '../../runtime-node/image.ts';
import { codeHash, fileHash, folderListingHash, withStamp } from './pipeline.ts';
import { main as refine } from './06-refine.ts';
import { readPool, writeRoundData } from './refine-data.ts';
import type { LabelRow } from './refine-labels.ts';
import type { RoundSummary } from './refine-rounds.ts';
import { stage, stageDir, type PseudoMasks, type Run, type StageOut } from './run-all-stages.ts';
import type { RunFlags } from './run-all.ts';
import { BOXES_COLUMNS } from './boxes-csv.ts';

/** 05-segmenter.ts flags every training shares: the preset, the one budget, --amp / --checkpoint-blocks. */
function segArgs(run: Run): string[] {
  const b = run.budget;
  return [
    '--config',
    run.flags.config,
    '--steps',
    String(b.segSteps),
    '--size',
    String(b.segSize),
    '--batch-size',
    String(b.segBatch),
    ...trainStepArgs(run.flags),
  ];
}

/** Another threshold, or the decoder in the rounds, keeps the released setting's rounds in their own folder. */
export const refineFolder = (f: RunFlags): string =>
  `06-refine${f.threshold === 0.01 ? '' : `-t${f.threshold}`}${f.samInRounds ? '-sam' : ''}`;

/** Stages 5/6: the segmenter rounds on the pseudo-masks (06-refine.ts reuses unchanged rounds itself). */
export async function refineRounds(
  run: Run,
  set: StageOut,
  boxes: string,
  stage4: PseudoMasks,
  kvasir: string,
): Promise<RoundSummary[]> {
  const f = run.flags;
  const tr = performance.now();
  const sam = f.samInRounds
    ? [
        '--sam-in-rounds',
        `--sam-args=--weights ${stage4.decoderWeights} --backbone ${stage4.backbone} --size ${run.budget.samSize}`,
      ]
    : [];
  const rounds = (await refine([
    '--pseudo',
    stage4.pseudo,
    '--boxes',
    boxes,
    '--set',
    set.dir,
    '--kvasir',
    kvasir,
    '--out',
    stageDir(run, refineFolder(f)),
    '--rounds',
    String(f.rounds),
    '--threshold',
    String(f.threshold),
    ...sam,
    ...segArgs(run),
  ]))!;
  run.ran['05/06 rounds'] = `${((performance.now() - tr) / 60000).toFixed(1)} min (rounds reused when unchanged)`;
  return rounds;
}

/** Baseline: the segmenter on the test set's real train masks (the upper bound). */
export async function realMaskBaseline(run: Run, kvasir: string): Promise<void> {
  await stage(
    run,
    '05-real-masks',
    '05-segmenter.ts',
    ['--data', kvasir, '--out', stageDir(run, '05-real-masks'), ...segArgs(run)],
    [join(kvasir, 'train.txt'), join(kvasir, 'test.txt')],
    [folderListingHash(join(kvasir, 'masks'))],
  );
}

/** Baseline: the segmenter on stage 3's accepted boxes filled in as masks. */
export async function boxMaskBaseline(run: Run, boxes: string, kvasir: string): Promise<void> {
  const boxData = stageDir(run, '05-box-masks-data');
  await withStamp(
    boxData,
    {
      boxes: fileHash(boxes),
      test: fileHash(join(kvasir, 'test.txt')),
      code: codeHash(fileURLToPath(new URL('./06-refine.ts', import.meta.url))),
    },
    async () => {
      writeRoundData(boxData, await boxRows(boxes), kvasir);
    },
    { within: run.out },
  );
  await stage(
    run,
    '05-box-masks',
    '05-segmenter.ts',
    ['--data', boxData, '--out', stageDir(run, '05-box-masks'), ...segArgs(run)],
    [join(boxData, 'train.txt')],
    [folderListingHash(join(boxData, 'masks'))],
  );
}

/** Stage 3's accepted boxes filled in as masks (the box-as-mask baseline), in 06-refine's row form. */
async function boxRows(boxesCsv: string): Promise<LabelRow[]> {
  // The columns it reads (reason is not needed here).
  const { rows } = parseCsvTable(readFileSync(boxesCsv, 'utf8'), boxesCsv, BOXES_COLUMNS.slice(0, 6));
  const pool = readPool(boxesCsv, new Map());
  const byPath = new Map(rows.map((r) => [resolve(dirname(boxesCsv), r.image_path), r]));
  const out: LabelRow[] = [];
  for (const item of pool) {
    const r = byPath.get(item.imagePath)!;
    if (r.accepted !== '1') continue;
    const { width, height } = await imageSize(item.imagePath);
    const [x0, y0, x1, y1] = [r.x0, r.y0, r.x1, r.y1].map(Number);
    const mask = new Uint8Array(width * height);
    for (let y = Math.max(0, y0); y < Math.min(height, y1); y++)
      mask.fill(1, y * width + Math.max(0, x0), y * width + Math.min(width, x1));
    out.push({
      item,
      width,
      height,
      dice: null,
      relabel: { mask, decision: { box: [x0, y0, x1, y1], accepted: true, reason: '', kept: [], areaFraction: 0 } },
    });
  }
  return out;
}
