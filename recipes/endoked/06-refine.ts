// EndoKED stage 6: the pseudo-mask refinement loop (spec §2.3 "Iteration loop"), round by round.
//   Round 0: train the segmenter (stage 5, Polyp-PVT) on stage 4's pseudo-masks (CAM box -> SAM-style
//            decoder).
//   Round k >= 1: predict every candidate image with the round-(k-1) segmenter: sigmoid(P1 + P2) at
//            the image's own size, min-max normalised, binarised at >= --threshold (0.01); run the
//            stage-3 box rule (engine/data/boxes.ts) on it only to accept or reject the image; the
//            binarised prediction itself is the new label (--sam-in-rounds: the stage-4 decoder is
//            re-prompted with the predicted box instead); retrain from scratch on the accepted set.
//   Labels are not fused across rounds: round k's labels depend only on round k-1's segmenter, and
//   the accepted set changes from round to round.
// Reference: zwyang6/ENDOKED EndoKED_WSSS/datasets/data_processing_refining/
//   a5_generate_pseuo_labels_from_SAM_byPreds_fromDecoder.py (predictor = None: the prediction is
//   the label) and a4_... (SAM prompted with the predicted box); the released weights are named
//   "iter6", i.e. about six rounds at full scale.
//
// Consumes: --pseudo DIR    stage 4's output (Kvasir-SEG layout: images/, masks/, train.txt with
//                           the pseudo-labelled ids, test.txt with the real test ids and masks)
//           --boxes FILE    stage 3's boxes.csv: every image_path row (accepted or not) is a
//                           candidate for re-labelling in rounds >= 1
//           --set DIR, --kvasir DIR   where true masks are (frames.csv mask_path; Kvasir masks/),
//                           read only to MEASURE pseudo-mask Dice, never to train
// Produces, in --out (default runs/endoked/06-refine):
//   round-<k>/data/        (k >= 1) the round's training folder in Kvasir-SEG layout (symlinked
//                          images, 0/255 label PNGs, train.txt, test.txt from --pseudo)
//   round-<k>/labels.csv   image_path,id,x0,y0,x1,y1,accepted,reason,dice (k >= 1; dice = label vs
//                          the true mask when one is known)
//   round-<k>/segmenter/   stage 5's outputs: weights, metrics.json (test Dice/IoU of the LAST
//                          checkpoint of the round: no model selection on the test set), overlays
//   rounds.json, rounds.png  per round: accepted images, pseudo-mask Dice, test Dice/IoU
// Resumable per round: a finished round is reused while its inputs, flags and code are unchanged
// (recipes/endoked/pipeline.ts stamps); an interrupted round continues from its checkpoint.
// The parts: refine-labels.ts (a pool re-labelled from predictions), refine-data.ts (the pool,
// true masks, a round's training folder), refine-rounds.ts (one round, and what each writes).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shutdown } from '../../runtime-node/index.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';
import { TRAIN_STEP_FLAGS } from '../../runtime-node/amp.ts';
import { readPool, truthIndex } from './refine-data.ts';
import { SAM_STAGE, logRound, pseudoKey, runRound, writeRounds, type RoundSummary } from './refine-rounds.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const FLAGS = defineFlags(
  'recipes/endoked/06-refine.ts',
  "EndoKED refinement rounds: segmenter predictions become the next round's labels (spec §2.3).",
  {
    pseudo: {
      type: 'string',
      help: "stage 4's output folder (Kvasir-SEG layout): round 0's labels and the test split",
    },
    boxes: { type: 'string', help: "stage 3's boxes.csv: the candidate images re-labelled in rounds >= 1" },
    set: { type: 'string', help: 'patient set folder (frames.csv mask_path): true masks, for measurement only' },
    kvasir: { type: 'string', help: 'Kvasir-SEG folder: true masks of its images, for measurement only' },
    out: { type: 'string', default: 'runs/endoked/06-refine', help: 'output folder' },
    rounds: {
      type: 'int',
      default: 3,
      min: 1,
      max: 50,
      help: 'segmenter trainings: round 0 on the stage-4 masks, then rounds-1 re-labellings',
    },
    threshold: {
      type: 'number',
      default: 0.01,
      min: 0,
      max: 1,
      help: 'binarise the min-max-normalised prediction at >= this (released code: 0.01)',
    },
    samInRounds: {
      type: 'boolean',
      default: false,
      help:
        're-prompt the stage-4 decoder with the predicted box instead of using the prediction ' +
        '(released default: off)',
    },
    samArgs: {
      type: 'string',
      default: '',
      help:
        'extra flags for 04-sam-pseudo-masks.ts with --sam-in-rounds, space-separated, given with "=": ' +
        '--sam-args="--weights W --backbone B"',
    },
    config: {
      type: 'string',
      choices: ['cpu', 'gpu'] as const,
      default: 'cpu',
      help: 'segmenter preset (05-segmenter.ts --config)',
    },
    steps: { type: 'int', min: 1, help: 'segmenter steps per round (05-segmenter.ts --steps; default: its --epochs)' },
    epochs: { type: 'int', min: 1, help: 'segmenter epochs per round (05-segmenter.ts --epochs)' },
    size: { type: 'int', min: 32, help: 'segmenter base size, a multiple of 32 (05-segmenter.ts --size)' },
    batchSize: { type: 'int', min: 1, help: 'segmenter batch (05-segmenter.ts --batch-size)' },
    init: { type: 'string', help: 'PVTv2 backbone weights for every round (05-segmenter.ts --init)' },
    maxMinutes: {
      type: 'number',
      min: 0,
      exclusiveMin: true,
      help: 'training budget per segmenter invocation; a round cut short resumes on the next run',
    },
    predictBatch: { type: 'int', default: 8, min: 1, help: 'images per forward when re-labelling' },
    // --amp, --loss-scale, --checkpoint-blocks: passed on to every round's segmenter (05-segmenter.ts).
    ...TRAIN_STEP_FLAGS,
  },
);

export type RefineFlags = NonNullable<ReturnType<typeof FLAGS.parse>>;

export async function main(argv: string[]): Promise<RoundSummary[] | null> {
  const f = FLAGS.parse(argv);
  if (!f) return null;
  const need = (flag: string, v: string | undefined, what: string) => {
    if (!v) throw new FlagError(`06-refine: --${flag} is required (${what})`);
    if (!existsSync(v)) throw new FlagError(`06-refine: --${flag} "${v}" does not exist (${what})`);
    return resolve(v);
  };
  const pseudo = need('pseudo', f.pseudo, "stage 4's output folder");
  for (const n of ['train.txt', 'test.txt', 'images', 'masks'])
    if (!existsSync(join(pseudo, n)))
      throw new FlagError(`06-refine: --pseudo "${pseudo}" has no ${n} (expected stage 4's Kvasir-SEG layout)`);
  const boxes = f.rounds > 1 ? need('boxes', f.boxes, "stage 3's boxes.csv, the images to re-label") : undefined;
  if (f.samInRounds && !existsSync(SAM_STAGE))
    throw new FlagError(`06-refine: --sam-in-rounds needs ${SAM_STAGE} (stage 4), which is not in this checkout`);
  const truth = truthIndex(f.set && resolve(f.set), f.kvasir && resolve(f.kvasir));
  const ctx = { f, out: resolve(ROOT, f.out), pseudo, boxes, pool: boxes ? readPool(boxes, truth) : [], truth };

  let prev = pseudoKey(pseudo);
  const summaries: RoundSummary[] = [];
  for (let k = 0; k < f.rounds; k++) {
    const r = await runRound(ctx, k, prev);
    prev = r.hash;
    summaries.push(r.summary);
    logRound(r.summary);
    await writeRounds(ctx.out, summaries);
    if (!r.summary.test) break;
  }
  return summaries;
}

if (isMain(import.meta.url)) {
  runMain(async (argv) => {
    await main(argv);
    await shutdown();
  });
}
