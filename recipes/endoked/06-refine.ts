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
// Resumable per round: a finished round is reused while its inputs and flags are unchanged
// (recipes/endoked/pipeline.ts stamps); an interrupted round continues from its checkpoint.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCsvTable, parseSplitFile, serialiseCsv, endokedBox, type BoxDecision } from '../../engine/data/index.ts';
import { diceIou } from '../../engine/metrics/index.ts';
import {
  add,
  imagesToChw,
  loadWeights,
  narrow,
  noGrad,
  sigmoid,
  tensor,
  tidy,
  interpolate,
  parseSafetensors,
} from '../../engine/index.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { polypPvt } from '../../models/polyp-pvt.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';
import { decodeImage, readMask, resizeImage, writeMaskPng } from '../../runtime-node/image.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import { uniqueIds } from './pipeline.ts';
import { fileHash, folderListingHash, runStage, withStamp } from './pipeline.ts';
import { main as segmenter } from './05-segmenter.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const SEGMENTER = join(HERE, '05-segmenter.ts');
const SAM_STAGE = join(HERE, '04-sam-pseudo-masks.ts');

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
  },
);

// ---- the round logic (pure; tested on crafted predictions) -----------------------------------------

export interface Relabel {
  /** The new label: the binarised prediction, all of it (not only the box's component). */
  mask: Uint8Array;
  decision: BoxDecision;
}

/**
 * One image's re-labelling from the previous segmenter's probability map (row-major, the image's
 * own size): min-max normalise, binarise at >= threshold, and let the box rule accept or reject.
 */
export function relabel(prob: ArrayLike<number>, width: number, height: number, threshold: number): Relabel {
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < prob.length; i++) {
    const v = prob[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const mask = new Uint8Array(width * height),
    range = hi - lo + 1e-8; // the released (res - min) / (max - min + 1e-8)
  for (let i = 0; i < mask.length; i++) mask[i] = (prob[i] - lo) / range >= threshold ? 1 : 0;
  return { mask, decision: endokedBox(mask, width, height) };
}

export { uniqueIds } from './pipeline.ts';

export interface PoolItem {
  imagePath: string;
  id: string;
  truthMask?: string;
}
export interface LabelRow {
  item: PoolItem;
  width: number;
  height: number;
  relabel: Relabel;
  dice: number | null;
}

/**
 * Re-labels the pool with `predict` (image path -> probability map at the image's size) and
 * measures each accepted label against its true mask when there is one. The previous round's
 * labels are deliberately not an input.
 */
export async function relabelPool(
  pool: readonly PoolItem[],
  predict: (items: PoolItem[]) => Promise<{ prob: Float32Array; width: number; height: number }[]>,
  threshold: number,
  batch: number,
  onProgress?: (done: number) => void,
): Promise<LabelRow[]> {
  const rows: LabelRow[] = [];
  for (let i = 0; i < pool.length; i += batch) {
    const items = pool.slice(i, i + batch);
    const maps = await predict(items);
    for (let k = 0; k < items.length; k++) {
      const { prob, width, height } = maps[k];
      const r = relabel(prob, width, height, threshold);
      let dice: number | null = null;
      if (r.decision.accepted && items[k].truthMask) dice = await maskDice(r.mask, width, height, items[k].truthMask!);
      rows.push({ item: items[k], width, height, relabel: r, dice });
    }
    onProgress?.(Math.min(pool.length, i + batch));
  }
  return rows;
}

/** Dice of a 0/1 label against a true-mask file (resized by nearest neighbour if the sizes differ). */
export async function maskDice(label: Uint8Array, width: number, height: number, truthPath: string): Promise<number> {
  const t = await readMask(truthPath);
  let truth = t.data;
  if (t.width !== width || t.height !== height) {
    truth = new Uint8Array(width * height);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        truth[y * width + x] =
          t.data[
            Math.min(t.height - 1, Math.floor(((y + 0.5) * t.height) / height)) * t.width +
              Math.min(t.width - 1, Math.floor(((x + 0.5) * t.width) / width))
          ];
      }
  }
  return diceIou(label, truth, 0.5).dice;
}

// ---- inputs --------------------------------------------------------------------------------------

const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
};

/** Image path (real path) -> true-mask path, from a patient set's frames.csv and a Kvasir-SEG folder. */
export function truthIndex(setDir?: string, kvasirDir?: string): Map<string, string> {
  const out = new Map<string, string>();
  if (setDir) {
    const csv = join(setDir, 'frames.csv');
    if (!existsSync(csv)) throw new FlagError(`06-refine: --set "${setDir}" has no frames.csv`);
    for (const r of parseCsvTable(readFileSync(csv, 'utf8'), csv, ['frame_path', 'mask_path']).rows) {
      if (r.mask_path) out.set(real(resolve(setDir, r.frame_path)), resolve(setDir, r.mask_path));
    }
  }
  if (kvasirDir) {
    const masks = new Map(
      readdirSync(join(kvasirDir, 'masks')).map((n) => [basename(n, extname(n)), join(kvasirDir, 'masks', n)]),
    );
    for (const n of readdirSync(join(kvasirDir, 'images'))) {
      const m = masks.get(basename(n, extname(n)));
      if (m) out.set(real(join(kvasirDir, 'images', n)), m);
    }
  }
  return out;
}

/** Every distinct image_path of a stage-3 boxes.csv (relative paths against the CSV's folder). */
export function readPool(boxesCsv: string, truth: Map<string, string>): PoolItem[] {
  const { rows } = parseCsvTable(readFileSync(boxesCsv, 'utf8'), boxesCsv, ['image_path']);
  const paths = [...new Set(rows.map((r) => resolve(dirname(boxesCsv), r.image_path)))];
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`${boxesCsv}: ${missing.length} image(s) do not exist, e.g. ${missing[0]}`);
  const ids = uniqueIds(paths);
  return paths.map((imagePath, i) => ({ imagePath, id: ids[i], truthMask: truth.get(real(imagePath)) }));
}

/** A Kvasir-SEG layout folder's split ids and image/mask files by id. */
function readLayout(dir: string) {
  const files = (sub: string) =>
    new Map(readdirSync(join(dir, sub)).map((n) => [basename(n, extname(n)), join(dir, sub, n)]));
  const ids = (name: string) => parseSplitFile(readFileSync(join(dir, name), 'utf8'), join(dir, name));
  return { train: ids('train.txt'), test: ids('test.txt'), images: files('images'), masks: files('masks') };
}

/** Writes a round's training folder: accepted labels as train ids, test ids/images/masks linked from `testFrom`. */
export function writeRoundData(
  dir: string,
  rows: readonly LabelRow[],
  testFrom: string,
): { train: string[]; test: string[] } {
  const src = readLayout(testFrom);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'images'), { recursive: true });
  mkdirSync(join(dir, 'masks'), { recursive: true });
  const testReal = new Set(src.test.map((id) => real(src.images.get(id)!)));
  const train: string[] = [];
  for (const r of rows) {
    if (!r.relabel.decision.accepted) continue;
    if (src.test.includes(r.item.id) || testReal.has(real(r.item.imagePath)))
      throw new Error(
        `06-refine: candidate "${r.item.imagePath}" is a test image of ${testFrom}; test images are never trained on`,
      );
    symlinkSync(real(r.item.imagePath), join(dir, 'images', r.item.id + extname(r.item.imagePath)));
    writeMaskPng(join(dir, 'masks', `${r.item.id}.png`), { width: r.width, height: r.height, data: r.relabel.mask });
    train.push(r.item.id);
  }
  for (const id of src.test) {
    const img = src.images.get(id),
      mask = src.masks.get(id);
    if (!img || !mask)
      throw new Error(`06-refine: ${testFrom}/test.txt lists "${id}" without images/ and masks/ files`);
    symlinkSync(real(img), join(dir, 'images', basename(img)));
    symlinkSync(real(mask), join(dir, 'masks', basename(mask)));
  }
  writeFileSync(join(dir, 'train.txt'), train.join('\n') + (train.length ? '\n' : ''));
  writeFileSync(join(dir, 'test.txt'), src.test.join('\n') + '\n');
  return { train, test: src.test };
}

export function labelsCsv(rows: readonly LabelRow[]): string {
  return serialiseCsv([
    ['image_path', 'id', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason', 'dice'],
    ...rows.map((r) => {
      const b = r.relabel.decision.box;
      return [
        r.item.imagePath,
        r.item.id,
        ...(b ?? ['', '', '', '']),
        r.relabel.decision.accepted ? 1 : 0,
        r.relabel.decision.reason,
        r.dice === null ? '' : r.dice.toFixed(6),
      ];
    }),
  ]);
}

// ---- the segmenter: training (stage 5) and prediction ----------------------------------------------

type Parsed = NonNullable<ReturnType<typeof FLAGS.parse>>;
export interface SegMetrics {
  steps: number;
  epochs: number;
  trainSeconds: number;
  numTrain: number;
  test: { meanDice: number; meanIou: number; minMax: { meanDice: number } };
}

/** Trains stage 5 on `data` into `out` (resuming there), then checks it reached its budget. */
async function trainSegmenter(f: Parsed, data: string, out: string): Promise<SegMetrics> {
  const argv = ['--data', data, '--out', out, '--config', f.config];
  if (f.steps !== undefined) argv.push('--steps', String(f.steps));
  if (f.epochs !== undefined) argv.push('--epochs', String(f.epochs));
  if (f.size !== undefined) argv.push('--size', String(f.size));
  if (f.batchSize !== undefined) argv.push('--batch-size', String(f.batchSize));
  if (f.init !== undefined) argv.push('--init', f.init);
  if (f.maxMinutes !== undefined) argv.push('--max-minutes', String(f.maxMinutes));
  console.log(`\n== 05-segmenter.ts ${argv.join(' ')}`);
  await segmenter(argv);
  const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as SegMetrics;
  const short = f.steps !== undefined ? m.steps < f.steps : f.epochs !== undefined && m.epochs < f.epochs - 1e-9;
  if (short)
    throw new Error(
      `06-refine: the segmenter in ${out} stopped at step ${m.steps} (--max-minutes); run again to continue the round`,
    );
  return m;
}

/** The round-(k-1) segmenter as a function: image paths -> sigmoid(P1 + P2) at each image's own size. */
export async function loadPredictor(weightsPath: string) {
  await initNode();
  const bytes = new Uint8Array(readFileSync(weightsPath));
  const meta = parseSafetensors(bytes).metadata ?? {};
  if (!meta.config || !meta.size)
    throw new Error(`${weightsPath}: no model config/size in its metadata (not written by 05-segmenter.ts?)`);
  const size = Number(meta.size),
    model = polypPvt(JSON.parse(meta.config));
  loadWeights(model, bytes, { strict: true, source: weightsPath });
  model.eval();
  const predict = async (items: PoolItem[]) => {
    const images = await Promise.all(items.map((it) => decodeImage(it.imagePath)));
    const inputs = await Promise.all(images.map((im) => resizeImage(im, size, size)));
    const maps = noGrad(() =>
      tidy(() => {
        const [p1, p2] = model.forward(tensor(imagesToChw(inputs).data, [inputs.length, 3, size, size]));
        const logits = add(p1, p2); // [B, 1, S, S], upsampled per image as the released code does before the sigmoid
        return images.map((im, i) =>
          sigmoid(
            interpolate(narrow(logits, 0, i, 1), {
              size: [im.height, im.width],
              mode: 'bilinear',
              alignCorners: false,
            }),
          ),
        );
      }),
    );
    const out: { prob: Float32Array; width: number; height: number }[] = [];
    for (let i = 0; i < maps.length; i++) {
      out.push({ prob: Float32Array.from(await maps[i].data()), width: images[i].width, height: images[i].height });
      maps[i].dispose();
    }
    return out;
  };
  return { predict, dispose: () => model.dispose() };
}

/** Mean Dice of a Kvasir-layout folder's train masks against the true masks of the same images. */
async function layoutDice(
  dir: string,
  pool: readonly PoolItem[],
  truth: Map<string, string>,
): Promise<{ mean: number | null; n: number }> {
  const lay = readLayout(dir),
    byId = new Map(pool.map((p) => [p.id, p]));
  const scores: number[] = [];
  for (const id of lay.train) {
    const image = lay.images.get(id),
      label = lay.masks.get(id);
    if (!image || !label) continue;
    const t = truth.get(real(image)) ?? byId.get(id)?.truthMask; // symlinked images resolve to the original
    if (!t) continue;
    const m = await readMask(label);
    scores.push(await maskDice(m.data, m.width, m.height, t));
  }
  return { mean: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null, n: scores.length };
}

// ---- the rounds ----------------------------------------------------------------------------------

export interface RoundSummary {
  round: number;
  labels: string;
  candidates: number;
  accepted: number;
  rejected: Record<string, number>;
  pseudoDice: { mean: number | null; n: number };
  /** Test Dice/IoU of the round's last checkpoint; null when the round accepted no image (the loop stops there). */
  test: { dice: number; iou: number; diceMinMax: number } | null;
  steps: number;
  trainSeconds: number;
}

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
  const out = resolve(ROOT, f.out);
  const truth = truthIndex(f.set && resolve(f.set), f.kvasir && resolve(f.kvasir));
  const pool = boxes ? readPool(boxes, truth) : [];
  const seg = {
    config: f.config,
    steps: f.steps,
    epochs: f.epochs,
    size: f.size,
    batchSize: f.batchSize,
    init: f.init && fileHash(f.init),
    code: fileHash(SEGMENTER),
  };
  const measure = { set: f.set && resolve(f.set), kvasir: f.kvasir && resolve(f.kvasir) };
  const splitHashes = `${fileHash(join(pseudo, 'train.txt'))}:${fileHash(join(pseudo, 'test.txt'))}`;
  let prev = `pseudo:${folderListingHash(pseudo)}:${splitHashes}`;
  const summaries: RoundSummary[] = [];
  for (let k = 0; k < f.rounds; k++) {
    const dir = join(out, `round-${k}`),
      data = k === 0 ? pseudo : join(dir, 'data');
    const key =
      k === 0
        ? { round: 0, pseudo: prev, seg, measure }
        : {
            round: k,
            prev,
            seg,
            measure,
            threshold: f.threshold,
            sam: f.samInRounds ? f.samArgs : false,
            pool: boxes && fileHash(boxes),
            code: fileHash(fileURLToPath(import.meta.url)),
          };
    const { hash } = await withStamp(
      dir,
      key,
      async () => {
        let rows: LabelRow[] = [];
        if (k > 0 && !existsSync(join(dir, 'labels.csv'))) {
          console.log(
            `round ${k}: re-labelling ${pool.length} images with the round-${k - 1} segmenter (>= ` +
              `${f.threshold} after min-max)`,
          );
          const bar = new Progress({ total: pool.length, label: 'relabel', unit: 'img' });
          const p = await loadPredictor(join(out, `round-${k - 1}`, 'segmenter', 'weights.safetensors'));
          let last = 0;
          rows = await relabelPool(pool, p.predict, f.threshold, f.predictBatch, (d) => {
            bar.tick(d - last);
            last = d;
          });
          p.dispose();
          // The predicted boxes, in stage 3's boxes.csv schema, go back to the decoder (with none accepted
          // there is nothing to prompt: the round's layout is written empty and the loop stops below).
          if (f.samInRounds && rows.some((r) => r.relabel.decision.accepted)) {
            const csv = join(dir, 'boxes.csv');
            writeFileSync(
              csv,
              serialiseCsv([
                ['image_path', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason'],
                ...rows.map((r) => [
                  r.item.imagePath,
                  ...(r.relabel.decision.box ?? ['', '', '', '']),
                  r.relabel.decision.accepted ? 1 : 0,
                  r.relabel.decision.reason,
                ]),
              ]),
            );
            await runStage(SAM_STAGE, [
              '--boxes',
              csv,
              '--test-from',
              pseudo,
              '--out',
              data,
              ...f.samArgs.split(/\s+/).filter(Boolean),
            ]);
          } else {
            writeRoundData(data, rows, pseudo);
          }
          writeFileSync(join(dir, 'labels.csv'), labelsCsv(rows)); // written last: marks the re-labelling done
        }
        const lay = readLayout(data);
        const labelsFile = join(dir, 'labels.csv');
        const rejected: Record<string, number> = {};
        let candidates = lay.train.length;
        if (k > 0) {
          const { rows: lr } = parseCsvTable(readFileSync(labelsFile, 'utf8'), labelsFile, ['accepted', 'reason']);
          candidates = lr.length;
          for (const r of lr) if (r.accepted !== '1') rejected[r.reason] = (rejected[r.reason] ?? 0) + 1;
        } else if (boxes) {
          const { rows: br } = parseCsvTable(readFileSync(boxes, 'utf8'), boxes, ['accepted']);
          candidates = br.length;
          for (const r of br)
            if (r.accepted !== '1') rejected[r.reason || 'rejected'] = (rejected[r.reason || 'rejected'] ?? 0) + 1;
        }
        const pseudoDice = await layoutDice(data, pool, truth);
        // No accepted image: nothing to train on, so the loop ends here (recorded, not an error).
        const m = lay.train.length ? await trainSegmenter(f, data, join(dir, 'segmenter')) : null;
        const s: RoundSummary = {
          round: k,
          labels:
            k === 0
              ? 'stage 4: decoder prompted with CAM boxes'
              : f.samInRounds
                ? `stage 4: decoder prompted with round-${k - 1} predicted boxes`
                : `round-${k - 1} segmenter predictions`,
          candidates,
          accepted: lay.train.length,
          rejected,
          pseudoDice,
          test: m && { dice: m.test.meanDice, iou: m.test.meanIou, diceMinMax: m.test.minMax.meanDice },
          steps: m?.steps ?? 0,
          trainSeconds: m?.trainSeconds ?? 0,
        };
        writeFileSync(join(dir, 'summary.json'), JSON.stringify(s, null, 2) + '\n');
      },
      { within: out },
    );
    prev = hash;
    summaries.push(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RoundSummary);
    const fmt = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
    const s = summaries[k];
    console.log(
      `round ${k}: ${s.accepted}/${s.candidates} accepted, pseudo-mask Dice ` +
        `${fmt(s.pseudoDice.mean)} (n=${s.pseudoDice.n}); ` +
        (s.test
          ? `test Dice ${s.test.dice.toFixed(4)}, IoU ${s.test.iou.toFixed(4)}`
          : `no image accepted (${JSON.stringify(s.rejected)}): the loop stops`),
    );
    writeFileSync(join(out, 'rounds.json'), JSON.stringify(summaries, null, 2) + '\n');
    await writeChartPng(
      join(out, 'rounds.png'),
      plot.lineChart(
        [
          { name: 'test Dice (last checkpoint)', y: summaries.map((r) => r.test?.dice ?? NaN) },
          { name: 'pseudo-mask Dice vs true masks', y: summaries.map((r) => r.pseudoDice.mean ?? NaN) },
          { name: 'accepted fraction', y: summaries.map((r) => r.accepted / Math.max(1, r.candidates)), dash: true },
        ],
        { title: 'EndoKED refinement rounds', xLabel: 'round', yLabel: 'score', yMin: 0, yMax: 1 },
      ),
    );
    if (!s.test) break;
  }
  return summaries;
}

if (isMain(import.meta.url)) {
  runMain(async (argv) => {
    await main(argv);
    await shutdown();
  });
}
