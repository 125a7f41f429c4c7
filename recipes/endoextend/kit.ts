// What the EndoExtend24 recipes share: the `--data` switch to the real-data flags, the EVA-02 size
// presets they choose from, loading image-classification records into batches, evaluation
// (softmax probabilities for every record), checkpoint paths, and (from runtime-node/amp.ts, which
// the EndoKED segmenter shares) the training step with its memory/precision knobs (--amp,
// --checkpoint-blocks). Each recipe stays a script you read top to bottom; this file only keeps
// them from repeating each other.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor, tidy, noGrad, softmax, type Tensor, parseSafetensors, loadWeights } from '../../engine/index.ts';
import { Loader, imagesToChw, DataOrder, type Sampler, type Batch } from '../../engine/data/index.ts';
import { decodeImageResized } from '../../runtime-node/image.ts';
import type { ImageRecord } from '../../runtime-node/datasets.ts';
import { eva02Config, type Eva02, type Eva02Config } from '../../models/eva02.ts';
import { timmKeyMap } from '../../models/eva02-mim.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The value of `--data` in argv ('synthetic' when absent): real-data runs have their own flags. */
export function dataFlag(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--data') return argv[i + 1] ?? '';
    if (argv[i].startsWith('--data=')) return argv[i].slice('--data='.length);
  }
  return 'synthetic';
}

/** The model sizes a recipe can pick: µ runs on a CPU driver in minutes, the rest want a GPU. */
export const SIZES = ['mu', 'ti', 's', 'b', 'l'] as const;

export function modelConfig(size: string, numClasses: number, imgSize?: number): Eva02Config {
  if (!(SIZES as readonly string[]).includes(size))
    throw new Error(`unknown model size '${size}' (${SIZES.join(', ')})`);
  const cfg = eva02Config(size as 'mu', { numClasses });
  return imgSize ? { ...cfg, imgSize } : cfg;
}

export function imageSizeOf(cfg: Eva02Config): number {
  return typeof cfg.imgSize === 'number' ? cfg.imgSize : cfg.imgSize[0];
}

export interface ClassBatch {
  x: Float32Array;
  y: Int32Array;
  n: number;
  size: number;
}

/** A prefetching loader of decoded, resized images in [0, 1] and their labels. */
export function classificationLoader(
  records: readonly ImageRecord[],
  o: { size: number; batchSize: number; sampler: Sampler; seed: number; prefetch?: number },
): Loader<{ img: Awaited<ReturnType<typeof decodeImageResized>>; label: number }, ClassBatch> {
  const order = new DataOrder(o.sampler, {
    batchSize: o.batchSize,
    seed: o.seed,
    dropLast: o.sampler.numSamples > o.batchSize,
  });
  return new Loader({
    order,
    prefetch: o.prefetch ?? 2,
    load: async (i: number) => ({
      img: await decodeImageResized(records[i].imagePath, o.size, o.size),
      label: records[i].label ?? -1,
    }),
    collate: (items, _b: Batch) => ({
      x: imagesToChw(items.map((it) => it.img)).data,
      y: Int32Array.from(items.map((it) => it.label)),
      n: items.length,
      size: o.size,
    }),
  });
}

/** Images of a batch as a tensor [n, 3, size, size]. */
export function batchImages(b: ClassBatch): Tensor {
  return tensor(b.x, [b.n, 3, b.size, b.size]);
}

/** ImageNet normalisation (the EVA-02 recipes' evaluation transform after resize). */
export const IMAGENET = {
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
};

export function normalize(x: Float32Array, size: number): Float32Array {
  const hw = size * size,
    out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / hw) % 3;
    out[i] = (x[i] - IMAGENET.mean[c]) / IMAGENET.std[c];
  }
  return out;
}

/** Softmax probabilities [n * C] for every record, in order (eval mode, no grad). */
export async function predict(
  model: { forward(x: Tensor): Tensor; eval(): unknown; train(on?: boolean): unknown },
  records: readonly ImageRecord[],
  numClasses: number,
  size: number,
  batchSize: number,
  onBatch?: (done: number) => void,
): Promise<Float32Array> {
  model.eval();
  const out = new Float32Array(records.length * numClasses);
  for (let start = 0; start < records.length; start += batchSize) {
    const chunk = records.slice(start, start + batchSize);
    const imgs = await Promise.all(chunk.map((r) => decodeImageResized(r.imagePath, size, size)));
    const x = normalize(imagesToChw(imgs).data, size);
    const p = tidy(() => noGrad(() => softmax(model.forward(tensor(x, [chunk.length, 3, size, size])), -1)));
    out.set(await p.data(), start * numClasses);
    p.dispose();
    onBatch?.(start + chunk.length);
  }
  model.train();
  return out;
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

export { join };

export type History = {
  epoch: number;
  loss: number;
  balancedAccuracy: number;
  macroAuc: number;
  macroF1: number;
  lr: number;
}[];

/**
 * Loads a stage's weights into a classifier. 'none': keep the random init. 'mim': stage 2's MIM
 * student, with timm's renaming (final norm -> fc_norm; mask token and LM head dropped), the head
 * stays random. 'ee24': stage 3's EE24 classifier (same 10 classes, so the head is kept, as in
 * the paper). Anything else: a safetensors path, loaded without the head if its shape differs
 * (a MIM student is recognised by its metadata and renamed as for 'mim').
 * Returns a note for the logs.
 */
export function loadInit(model: Eva02, init: string, out: string, opts: { allowNonFinite?: boolean } = {}): string {
  if (init === 'none') return 'random initialisation (from scratch)';
  const path =
    init === 'mim'
      ? join(out, 'mim', 'mim.safetensors')
      : init === 'ee24'
        ? join(out, 'ee24', 'best.safetensors')
        : init;
  const stage =
    init === 'mim'
      ? 'recipes/endoextend/02-mim-pretrain.ts'
      : init === 'ee24'
        ? 'recipes/endoextend/03-supervised-pretrain.ts'
        : 'a stage that writes it';
  if (!existsSync(path)) throw new Error(`${path} does not exist: run ${stage} first (or pass --init none)`);
  const bytes = new Uint8Array(readFileSync(path));
  // A MIM student (stage 2 writes stage: 'mim' in its metadata) needs timm's renaming wherever it lives.
  const isMim = init === 'mim' || parseSafetensors(bytes).metadata?.stage === 'mim';
  const load = () =>
    loadWeights(model, bytes, {
      source: path,
      allowUnexpected: true, // e.g. the MIM student's own head
      mapKey: isMim ? (k) => timmKeyMap(k, { qkvFused: model.cfg.qkvFused, toClassifier: true }) : undefined,
      keep: (k) => k.startsWith('head.'), // another number of classes: keep the new head
      reshape: true,
      allowNonFinite: opts.allowNonFinite,
    });
  let r: ReturnType<typeof load>;
  try {
    r = load();
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    throw new Error(/NaN\/Infinity/.test(text) ? `${text}; rerun ${stage}, or pass --init none` : text);
  }
  const fresh = r.kept.map((k) => k.key);
  return `${path} (${r.loaded} tensors${fresh.length ? `; new: ${fresh.join(', ')}` : ''})`;
}

// ---- the training step: mixed precision and activation checkpointing --------------------------
// Shared with the EndoKED segmenter: one copy, in runtime-node/amp.ts.
export {
  TRAIN_STEP_FLAGS,
  trainStepArgs,
  ampMode,
  TrainStep,
  type StepResult,
  type ScalerState,
} from '../../runtime-node/amp.ts';
