// Re-labelling a pool of images from a segmenter's predictions, one refinement round of EndoKED
// stage 6 (06-refine.ts; spec §2.3 "Iteration loop"): the round-(k-1) segmenter's sigmoid(P1 + P2)
// at each image's own size, min-max normalised, binarised at >= threshold; the stage-3 box rule
// (engine/data/boxes.ts) only accepts or rejects the image, and the whole binarised prediction is
// the new label. Reference: zwyang6/ENDOKED EndoKED_WSSS/datasets/data_processing_refining/
// a5_generate_pseuo_labels_from_SAM_byPreds_fromDecoder.py (predictor = None: the prediction is
// the label) and a4_... (the predicted boxes prompt SAM instead: boxesCsv).
import { readFileSync } from 'node:fs';
import { serialiseCsv, endokedBox, type BoxDecision } from '../../engine/data/index.ts';
import { diceIou } from '../../engine/metrics/index.ts';
import { loadWeights, parseSafetensors } from '../../engine/index.ts';
import { polypPvt } from '../../models/polyp-pvt.ts';
import { initNode } from '../../runtime-node/index.ts';
import { decodeImage, readMask, resizeImage } from '../../runtime-node/image.ts';
import { maxDevicePixels, predictProbs } from './seg-eval.ts';
import { BOXES_COLUMNS } from './boxes-csv.ts';

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

/** A round's labels.csv: every candidate, its predicted box, the decision and the label's Dice when measurable. */
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

/** The predicted boxes in stage 3's boxes.csv schema, to prompt the stage-4 decoder with (--sam-in-rounds). */
export function boxesCsv(rows: readonly LabelRow[]): string {
  return serialiseCsv([
    [...BOXES_COLUMNS],
    ...rows.map((r) => [
      r.item.imagePath,
      ...(r.relabel.decision.box ?? ['', '', '', '']),
      r.relabel.decision.accepted ? 1 : 0,
      r.relabel.decision.reason,
    ]),
  ]);
}

/** The round-(k-1) segmenter as a function: image paths -> sigmoid(P1 + P2) at each image's own size. */
export async function loadPredictor(weightsPath: string) {
  const gpu = await initNode();
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
    const probs = await predictProbs(
      model,
      inputs,
      images.map((im) => [im.height, im.width]),
      size,
      maxDevicePixels(gpu.limits),
    );
    return probs.map((prob, i) => ({ prob, width: images[i].width, height: images[i].height }));
  };
  return { predict, dispose: () => model.dispose() };
}
