// EndoKED stage 4: boxes -> pixel pseudo-masks with a SAM-style prompt encoder and two-way mask
// decoder (models/sam-decoder.ts), spec §2.3 "CAM -> box -> SAM" and §2.4. EndoKED prompts SAM
// ViT-H with each CAM box (multimask_output=False, mask = logits > 0). SAM's ViT-H is out of reach
// on a CPU driver, so the image side is this project's own frozen backbone plus SAM's neck, and
// the decoder is trained here (--train) as SAM's decoder is fine-tuned in practice: on image
// embeddings computed once and cached.
//
// Image side: PVTv2-µ from a Polyp-PVT-µ segmenter trained on SYNTHETIC polyps
// (`05-segmenter.ts --data synthetic`; never real masks). Why this backbone: its stride-8 map
// gives a 16 x 16 grid at 128² (EVA-02 µ's patch-8 grid at 64² is 8 x 8, i.e. 32² masks), its
// pyramid adds stride-16/32 context, and its training already separates polyp from mucosa. Its
// maps [x2, up(x3), up(x4)] (224 channels at stride 8) are cached as safetensors; SAM's neck
// (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d) trains with the decoder (recipes/endoked/sam-kit.ts).
//
// --train consumes: seeded synthetic colonoscopy frames with exact masks (runtime-node/synthetic);
//   never Kvasir-SEG or any real mask. One instance per polyp (8-connected component), box prompt
//   with SAM's noise (each coordinate N(0, (0.1 side)²), at most 20 px). Loss (SAM §A): 20 focal +
//   1 Dice on the single-mask output plus the best of the 3 multimask outputs, and MSE between
//   the IoU head and each mask's actual IoU. AdamW. Produces in --out: state.safetensors
//   (resumable), weights.safetensors (image_encoder.neck.*, prompt_encoder.*, mask_decoder.*),
//   loss.png, train-metrics.json (held-out synthetic Dice: decoder vs the box as the mask),
//   cache/*.safetensors (backbone features).
// Use (default) consumes: --boxes boxes.csv (stage 3 contract: image_path,x0,y0,x1,y1,accepted,
//   reason; pixel coordinates of the original image, x1/y1 exclusive; relative paths against the
//   CSV's folder or --images), or --boxes-from-masks DIR (a Kvasir-SEG-layout folder: one box per
//   mask component of its train.txt images, optional --jitter, written to <out>/boxes.csv) until
//   the CAM stage provides boxes. Produces the Kvasir-SEG layout in --out: images/ (symlinks of
//   accepted images), masks/<stem>.png (0/255; the union of the box masks), train.txt, and
//   test.txt with the test images and their masks linked from --test-from (default: the
//   --boxes-from-masks folder) so `05-segmenter.ts --data <out>` trains on pseudo-masks and tests
//   on real masks; metrics.json (mean Dice of the decoder's and the box's masks vs the true masks
//   when known, per image; embedding and per-box decoder latency).
// Usage:
//   npx tsx recipes/endoked/05-segmenter.ts --data synthetic --out runs/segmenter-synthetic
//   npx tsx recipes/endoked/04-sam-pseudo-masks.ts --train --backbone runs/segmenter-synthetic/weights.safetensors
//   npx tsx recipes/endoked/04-sam-pseudo-masks.ts --boxes-from-masks ../shared/data/kvasir-seg \
//     --out runs/endoked/04-sam/kvasir
// Deviations: frames are resized to S x S (SAM keeps the aspect ratio and pads to 1024²), so
// post-processing is bilinear to S, no crop, bilinear to the original size, threshold 0.
import { existsSync, mkdirSync, readFileSync, symlinkSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { uniqueIds } from './pipeline.ts';
import { fileURLToPath } from 'node:url';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  add,
  mean,
  min,
  narrow,
  reshape,
  mseLoss,
  gt,
  manualSeed,
  defaultGenerator,
  AdamW,
  RandomSampler,
  DataOrder,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  loadWeights,
  Rng,
  type Tensor,
} from '../../engine/index.ts';
import { parseCsvTable, serialiseCsv, type MaskImage } from '../../engine/data/index.ts';
import { polypSample } from '../../runtime-node/synthetic/index.ts';
import {
  samPromptDecoder,
  postprocessMasks,
  SAM_DECODER,
  type SamDecoderConfig,
  type SamPromptDecoder,
} from '../../models/sam-decoder.ts';
import { FEATURE_CHANNELS, type PolypPVT } from '../../models/polyp-pvt.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import {
  decodeImageResized,
  imageSize,
  readMask,
  resizeImage,
  resizeMask,
  writeMaskPng,
} from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';
import {
  loadBackbone,
  backboneFeatures,
  backboneFeatureTensor,
  featureCacheBytes,
  readFeatureCache,
  samMaskLoss,
  maskIou,
  components,
  jitterBox,
  boxMask,
  dice,
  type Box,
} from './sam-kit.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FLAGS = defineFlags(
  'recipes/endoked/04-sam-pseudo-masks.ts',
  'EndoKED stage 4: SAM-style decoder, box prompts -> pseudo-masks (--train trains it on synthetic masks).',
  {
    train: {
      type: 'boolean',
      default: false,
      help: 'train the decoder on synthetic frames (otherwise: make pseudo-masks)',
    },
    out: { type: 'string', help: 'output folder (default runs/endoked/04-sam, or <that>/pseudo for pseudo-masks)' },
    backbone: {
      type: 'string',
      default: 'runs/segmenter-synthetic/weights.safetensors',
      help: "Polyp-PVT-µ weights from 05-segmenter.ts --data synthetic ('random': untrained, tests only)",
    },
    size: {
      type: 'int',
      default: 128,
      min: 32,
      help: 'frame size S fed to the backbone (multiple of 32; embedding grid S/8, masks S/2)',
    },
    trainImages: { type: 'int', default: 400, min: 1, help: 'synthetic training frames (--train)' },
    valImages: { type: 'int', default: 40, min: 1, help: 'held-out synthetic frames for train-metrics.json (--train)' },
    frameSize: { type: 'int', default: 256, min: 32, help: 'synthetic frame size in pixels (--train)' },
    steps: { type: 'int', default: 3000, min: 1, help: 'training steps (--train)' },
    batchSize: { type: 'int', default: 8, min: 1, help: 'box prompts per step (--train)' },
    lr: {
      type: 'number',
      default: 2e-3,
      min: 0,
      exclusiveMin: true,
      help:
        'AdamW learning rate (SAM: 8e-4 at 256 images per batch over 90k steps; higher here for a ' +
        'short run of a small decoder)',
    },
    weightDecay: { type: 'number', default: 0.1, min: 0, help: 'AdamW weight decay (SAM: 0.1)' },
    boxNoise: { type: 'number', default: 0.1, min: 0, help: 'box noise std as a fraction of the box side (SAM: 0.1)' },
    boxNoiseMax: { type: 'number', default: 20, min: 0, help: 'largest box noise in pixels (SAM: 20)' },
    ckptEvery: { type: 'int', default: 50, min: 1, help: 'steps between checkpoints' },
    maxMinutes: { type: 'number', min: 0, exclusiveMin: true, help: 'wall-clock budget of this invocation' },
    resume: { type: 'boolean', default: true, help: 'continue from <out>/state.safetensors' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of the synthetic frames, init, data order and box noise' },
    weights: {
      type: 'string',
      help: 'decoder weights for pseudo-masks (default runs/endoked/04-sam/weights.safetensors)',
    },
    boxes: { type: 'string', help: 'boxes.csv (stage 3 contract) to turn into pseudo-masks' },
    images: { type: 'string', help: 'folder to find relative or missing image_path entries in' },
    boxesFromMasks: {
      type: 'string',
      help: 'Kvasir-SEG-layout folder: boxes from the masks of its train.txt images (for measurement)',
    },
    jitter: { type: 'number', default: 0, min: 0, help: 'box noise (fraction of the side) for --boxes-from-masks' },
    testFrom: {
      type: 'string',
      help: 'Kvasir-SEG-layout folder whose test.txt images and masks the output links (default: --boxes-from-masks)',
    },
    limit: { type: 'int', min: 1, help: 'use only the first N images' },
  },
);

/** The decoder for frames of size S: SAM-decoder-µ's widths (spec §4) on an S/8 grid. */
export function decoderConfig(size: number): SamDecoderConfig {
  return { ...SAM_DECODER.mu, imageEmbeddingSize: [size / 8, size / 8], inputImageSize: [size, size] };
}

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
  if (f.size % 32 !== 0)
    throw new FlagError(`${FLAGS.script}: --size ${f.size} must be a multiple of 32 (PVTv2's stride)`);
  const backbonePath = f.backbone === 'random' ? 'random' : resolve(ROOT, f.backbone);
  if (backbonePath !== 'random' && !existsSync(backbonePath)) {
    throw new FlagError(
      `${FLAGS.script}: --backbone ${backbonePath} does not exist; train one with\n  npx tsx ` +
        `recipes/endoked/05-segmenter.ts --data synthetic --out runs/segmenter-synthetic`,
    );
  }
  if (!f.train && !f.boxes && !f.boxesFromMasks)
    throw new FlagError(`${FLAGS.script}: give --train, --boxes boxes.csv or --boxes-from-masks DIR`);
  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  const backbone = loadBackbone(
    backbonePath === 'random' ? 'random' : new Uint8Array(readFileSync(backbonePath)),
    backbonePath,
  );
  try {
    if (f.train) await train(f, backbone, backbonePath);
    else await pseudoMasks(f, backbone);
  } finally {
    backbone.dispose();
    await shutdown();
  }
}

type Parsed = NonNullable<ReturnType<typeof FLAGS.parse>>;

// ---- training --------------------------------------------------------------------------------------

interface Instance {
  image: number;
  box: Box;
  target: Float32Array;
}

/** Synthetic frames (at least one polyp each): features on the S grid, one instance per polyp. */
async function syntheticInstances(
  f: Parsed,
  backbone: PolypPVT,
  first: number,
  count: number,
  cacheDir: string,
  backboneId: string,
) {
  const m = f.size / 2; // mask resolution of the decoder
  const frames = [],
    instances: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const s = polypSample(f.seed, first + i, { width: f.frameSize, height: f.frameSize, polyps: [0, 0.75, 0.25] });
    frames.push(s.image);
    for (const c of components(s.mask)) {
      if (c.area < 0.002 * f.frameSize * f.frameSize) continue; // slivers cut by the field of view
      const own: MaskImage = {
        width: f.frameSize,
        height: f.frameSize,
        data: new Uint8Array(f.frameSize * f.frameSize),
      };
      for (const p of c.pixels) own.data[p] = 1;
      instances.push({ image: i, box: c.box, target: Float32Array.from(resizeMask(own, m, m).data) });
    }
  }
  const meta = {
    backbone: backboneId,
    seed: String(f.seed),
    first: String(first),
    count: String(count),
    size: String(f.size),
    frame: String(f.frameSize),
  };
  const path = join(cacheDir, `features-${first}-${count}-s${f.size}.safetensors`);
  let cache = readFeatureCache(readIfExists(path), meta);
  if (!cache) {
    const g = f.size / 8,
      per = FEATURE_CHANNELS * g * g,
      features = new Float32Array(count * per);
    const bar = new Progress({ total: count, label: 'cache', unit: 'img' });
    for (let i = 0; i < count; i += 8) {
      const batch = await Promise.all(frames.slice(i, i + 8).map((im) => resizeImage(im, f.size, f.size)));
      features.set(await backboneFeatures(backbone, batch), i * per);
      bar.tick(batch.length);
    }
    cache = { features, shape: [count, FEATURE_CHANNELS, g, g], meta };
    writeAtomic(path, featureCacheBytes(cache));
  }
  return { cache, instances };
}

async function train(f: Parsed, backbone: PolypPVT, backbonePath: string): Promise<void> {
  const out = resolve(ROOT, f.out ?? 'runs/endoked/04-sam');
  const backboneId =
    backbonePath === 'random' ? 'random' : `${basename(backbonePath)}:${readFileSync(backbonePath).length}`;
  const t0 = performance.now();
  const data = await syntheticInstances(f, backbone, 0, f.trainImages, join(out, 'cache'), backboneId);
  const val = await syntheticInstances(f, backbone, 1_000_000, f.valImages, join(out, 'cache'), backboneId);
  console.log(
    `synthetic: ${f.trainImages} frames, ${data.instances.length} polyp instances ` +
      `(+${val.instances.length} held out); features in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  manualSeed(f.seed);
  const config = decoderConfig(f.size);
  const model = samPromptDecoder(config, { neckInChans: FEATURE_CHANNELS });
  model.flattenParameters();
  const optimizer = new AdamW(model.parameters(), { lr: f.lr, weightDecay: f.weightDecay });
  const order = new DataOrder(new RandomSampler(data.instances.length), { batchSize: f.batchSize, seed: f.seed });
  const noise = new Rng(f.seed + 1);
  console.log(
    `model: SAM decoder (${config.embedDim}-d, ${config.numHeads} heads, grid ` +
      `${config.imageEmbeddingSize.join('x')}) + neck, ${(model.numParameters() / 1e3).toFixed(1)}k ` +
      `parameters`,
  );

  interface Extra {
    step: number;
    losses: number[];
    seconds: number;
    size: number;
    batchSize: number;
    trainImages: number;
  }
  const statePath = join(out, 'state.safetensors');
  let step = 0,
    losses: number[] = [],
    seconds = 0;
  const saved = f.resume ? readIfExists(statePath) : null;
  if (saved) {
    const r = restoreTrainState<Extra>(saved, { model, optimizer, generator: defaultGenerator }, statePath);
    if (r.extra.size !== f.size || r.extra.batchSize !== f.batchSize || r.extra.trainImages !== f.trainImages) {
      throw new Error(
        `${statePath} was written with size ${r.extra.size}, batch ${r.extra.batchSize}, ` +
          `${r.extra.trainImages} frames; use another --out or --no-resume`,
      );
    }
    ({ step, losses, seconds } = r.extra);
    order.loadStateDict(r.data!);
    noise.setState(r.rngs!.noise);
    console.log(`resumed from ${statePath} at step ${step}`);
  }
  const checkpoint = async () =>
    writeAtomic(
      statePath,
      await trainStateBytes({
        model,
        optimizer,
        generator: defaultGenerator,
        data: order.stateDict(),
        rngs: { noise: noise.getState() },
        extra: {
          step,
          losses,
          seconds,
          size: f.size,
          batchSize: f.batchSize,
          trainImages: f.trainImages,
        } satisfies Extra,
      }),
    );

  const [, c, g] = data.cache.shape,
    per = c * g * g,
    m = f.size / 2,
    scale = f.size / f.frameSize;
  const deadline = f.maxMinutes ? performance.now() + f.maxMinutes * 60_000 : Infinity;
  const bar = new Progress({ total: f.steps, label: 'train', unit: 'step' });
  bar.set(step);
  model.train();
  while (step < f.steps && performance.now() < deadline) {
    const ts = performance.now();
    const idx = Array.from(order.nextBatch().indices, (i) => data.instances[i]);
    const b = idx.length,
      feats = new Float32Array(b * per),
      targets = new Float32Array(b * m * m),
      boxes: number[] = [];
    idx.forEach((inst, k) => {
      feats.set(data.cache.features.subarray(inst.image * per, (inst.image + 1) * per), k * per);
      targets.set(inst.target, k * m * m);
      boxes.push(
        ...jitterBox(inst.box, noise, f.boxNoise, f.boxNoiseMax, f.frameSize, f.frameSize).map((v) => v * scale),
      );
    });
    const loss = tidy(() => {
      const emb = model.embedImage(tensor(feats, [b, c, g, g]));
      const { masks, iou } = model.predictAll(emb, { boxes: tensor(boxes, [b, 4]) });
      const target = tensor(targets, [b, 1, m, m]);
      const per = samMaskLoss(masks, target); // [B, T]
      const t = per.shape[1];
      // single + best multimask
      const maskLoss = mean(add(reshape(narrow(per, 1, 0, 1), [b]), min(narrow(per, 1, 1, t - 1), 1)));
      const l = add(maskLoss, mseLoss(iou, maskIou(masks, target)));
      backward(l);
      return l;
    });
    const value = await loss.item();
    loss.dispose();
    if (!Number.isFinite(value)) {
      optimizer.zeroGrad();
      throw new Error(`loss became ${value} at step ${step}; no checkpoint written for this step (lower --lr?)`);
    }
    optimizer.step();
    optimizer.zeroGrad();
    losses.push(value);
    step++;
    seconds += (performance.now() - ts) / 1000;
    bar.tick(1, `loss ${value.toFixed(4)}`);
    if (step % f.ckptEvery === 0 || step === f.steps) await checkpoint();
  }
  if (step < f.steps) {
    await checkpoint();
    console.log(`stopped at step ${step} after --max-minutes ${f.maxMinutes}; run again to continue`);
  }
  writeAtomic(
    join(out, 'weights.safetensors'),
    await weightsBytes(model, { model: 'sam_decoder', config: JSON.stringify(config), backbone: backboneId }),
  );
  const smooth = losses.map((_, i) => {
    const w = losses.slice(Math.max(0, i - 19), i + 1);
    return w.reduce((a, v) => a + v, 0) / w.length;
  });
  await writeChartPng(
    join(out, 'loss.png'),
    plot.lineChart(
      [
        { name: 'loss', y: losses, color: [170, 190, 215] },
        { name: 'mean of 20 steps', y: smooth, color: [31, 119, 180] },
      ],
      { title: 'SAM decoder: 20 focal + Dice + IoU MSE', xLabel: 'step', yLabel: 'loss' },
    ),
  );

  // Held-out synthetic frames, exact boxes: the decoder's single mask vs the box itself.
  model.eval();
  const scores = { decoder: [] as number[], box: [] as number[] };
  for (const inst of val.instances) {
    const feats = val.cache.features.subarray(inst.image * per, (inst.image + 1) * per);
    const logits = noGrad(() =>
      tidy(
        () =>
          model.forward(
            model.embedImage(tensor(feats, [1, c, g, g])),
            {
              boxes: tensor(
                inst.box.map((v) => v * scale),
                [1, 4],
              ),
            },
            false,
          ).masks,
      ),
    );
    const pred = await logits.data();
    logits.dispose();
    scores.decoder.push(
      dice(
        Array.from(pred, (v) => (v > 0 ? 1 : 0)),
        inst.target,
      ),
    );
    scores.box.push(dice(boxMask(inst.box.map((v) => (v * m) / f.frameSize) as Box, m, m), inst.target));
  }
  const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
  const metrics = {
    steps: step,
    trainSeconds: Math.round(seconds),
    secondsPerStep: seconds / Math.max(1, step),
    finalLoss: losses.at(-1) ?? null,
    device: String((await initNode()).adapterName),
    heldOut: {
      instances: val.instances.length,
      maskSize: m,
      meanDiceDecoder: avg(scores.decoder),
      meanDiceBox: avg(scores.box),
    },
  };
  writeFileSync(join(out, 'train-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  console.log(
    `held-out synthetic (${val.instances.length} polyps, ${m}² masks): mean Dice decoder ` +
      `${metrics.heldOut.meanDiceDecoder.toFixed(4)}, box ${metrics.heldOut.meanDiceBox.toFixed(4)}`,
  );
  console.log(
    `trained ${step} steps in ${seconds.toFixed(0)} s; wrote ${out}/weights.safetensors, ` +
      `state.safetensors, loss.png, train-metrics.json`,
  );
  optimizer.dispose();
  model.dispose();
}

// ---- pseudo-masks ---------------------------------------------------------------------------------

interface Target {
  path: string;
  boxes: Box[];
  maskPath?: string;
}

/** Boxes per image from boxes.csv (accepted rows), paths resolved against the CSV's folder or --images. */
function readBoxes(csv: string, imagesDir?: string): Target[] {
  const { rows } = parseCsvTable(readFileSync(csv, 'utf8'), csv, [
    'image_path',
    'x0',
    'y0',
    'x1',
    'y1',
    'accepted',
    'reason',
  ]);
  const byPath = new Map<string, Target>();
  rows.forEach((r, k) => {
    if (r.accepted.trim() !== '1') return;
    let path = isAbsolute(r.image_path) ? r.image_path : resolve(dirname(csv), r.image_path);
    if (!existsSync(path) && imagesDir)
      path = resolve(imagesDir, isAbsolute(r.image_path) ? basename(r.image_path) : r.image_path);
    if (!existsSync(path))
      throw new Error(
        `${csv}: row ${k + 1}: image "${r.image_path}" not found (resolved to ${path}; pass --images DIR)`,
      );
    const box = [r.x0, r.y0, r.x1, r.y1].map(Number) as Box;
    if (box.some((v) => !Number.isFinite(v)) || box[2] <= box[0] || box[3] <= box[1])
      throw new Error(`${csv}: row ${k + 1}: box ${box.join(',')} is not x0 < x1, y0 < y1`);
    const t = byPath.get(path) ?? { path, boxes: [] };
    t.boxes.push(box);
    byPath.set(path, t);
  });
  return [...byPath.values()];
}

/**
 * One box per mask component (>= 0.1% of the image) of a Kvasir-layout folder's train.txt images; writes
 * <out>/boxes.csv.
 */
async function boxesFromMasks(
  dir: string,
  out: string,
  jitter: number,
  seed: number,
  limit?: number,
): Promise<Target[]> {
  const records = readKvasirSeg(dir, { split: 'train', log: null }).records.slice(0, limit);
  const rng = new Rng(seed + 2),
    rows: (string | number)[][] = [['image_path', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason']];
  const targets: Target[] = [];
  for (const r of records) {
    const mask = await readMask(r.maskPath!);
    const comps = components(mask).filter((c) => c.area >= 0.001 * mask.width * mask.height);
    if (comps.length === 0) {
      rows.push([r.imagePath, 0, 0, 0, 0, 0, 'no-foreground']);
      continue;
    }
    const boxes = comps.map((c) => jitterBox(c.box, rng, jitter, 20, mask.width, mask.height).map(Math.round) as Box);
    for (const b of boxes) rows.push([r.imagePath, ...b, 1, '']);
    targets.push({ path: r.imagePath, boxes, maskPath: r.maskPath });
  }
  writeFileSync(join(out, 'boxes.csv'), serialiseCsv(rows));
  return targets;
}

function link(from: string, to: string): void {
  if (existsSync(to)) rmSync(to);
  symlinkSync(resolve(from), to);
}

async function pseudoMasks(f: Parsed, backbone: PolypPVT): Promise<void> {
  const out = resolve(ROOT, f.out ?? 'runs/endoked/04-sam/pseudo');
  const weightsPath = resolve(ROOT, f.weights ?? 'runs/endoked/04-sam/weights.safetensors');
  if (!existsSync(weightsPath))
    throw new FlagError(
      `${FLAGS.script}: --weights ${weightsPath} does not exist; train the decoder first with --train`,
    );
  for (const d of ['images', 'masks']) mkdirSync(join(out, d), { recursive: true });
  const config = decoderConfig(f.size);
  const model = samPromptDecoder(config, { neckInChans: FEATURE_CHANNELS });
  loadWeights(model, new Uint8Array(readFileSync(weightsPath)), { source: weightsPath });
  model.eval();
  const fromMasks = f.boxesFromMasks ? resolve(f.boxesFromMasks) : undefined;
  const targets = fromMasks
    ? await boxesFromMasks(fromMasks, out, f.jitter, f.seed, f.limit)
    : readBoxes(resolve(f.boxes!), f.images && resolve(f.images)).slice(0, f.limit);
  if (targets.length === 0) throw new Error('no accepted boxes to turn into masks');
  // stems, folder-prefixed where they collide (PolypGen's centre_A/img1, centre_B/img1)
  const ids = uniqueIds(targets.map((t) => t.path));
  const perImage: { id: string; boxes: number; dice?: number; diceBox?: number }[] = [];
  let embedMs = 0,
    decodeMs = 0,
    nBoxes = 0;
  const boxMs: number[] = []; // per box, for the median (the first calls include pipeline compilation)
  const bar = new Progress({ total: targets.length, label: 'masks', unit: 'img' });
  for (const [k, t] of targets.entries()) {
    const { width: w, height: h } = await imageSize(t.path);
    const frame = await decodeImageResized(t.path, f.size, f.size);
    let te = performance.now();
    const emb = noGrad(() => tidy(() => model.embedImage(backboneFeatureTensor(backbone, [frame])))); // once per image
    await emb.data();
    embedMs += performance.now() - te;
    const mask = new Uint8Array(w * h),
      boxOnly = new Uint8Array(w * h);
    for (const box of t.boxes) {
      te = performance.now();
      const scaled = [(box[0] * f.size) / w, (box[1] * f.size) / h, (box[2] * f.size) / w, (box[3] * f.size) / h];
      const bin = noGrad(() =>
        tidy(() => {
          const { masks } = model.forward(emb, { boxes: tensor(scaled, [1, 4]) }, false); // [1, 1, S/2, S/2]
          // SAM's mask_threshold 0
          return gt(postprocessMasks(masks, config.inputImageSize, [f.size, f.size], [h, w]), 0);
        }),
      );
      const v = await bin.data();
      bin.dispose();
      decodeMs += performance.now() - te;
      boxMs.push(performance.now() - te);
      nBoxes++;
      for (let i = 0; i < v.length; i++) if (v[i]) mask[i] = 1;
      boxMask(box, w, h, boxOnly);
    }
    emb.dispose();
    const id = ids[k];
    link(t.path, join(out, 'images', `${id}${extname(t.path)}`));
    writeMaskPng(join(out, 'masks', `${id}.png`), { width: w, height: h, data: mask });
    const row: (typeof perImage)[number] = { id, boxes: t.boxes.length };
    if (t.maskPath) {
      const truth = await readMask(t.maskPath);
      row.dice = dice(mask, truth.data);
      row.diceBox = dice(boxOnly, truth.data);
    }
    perImage.push(row);
    bar.tick(1, row.dice === undefined ? '' : `Dice ${row.dice.toFixed(3)} (box ${row.diceBox!.toFixed(3)})`);
  }
  writeFileSync(join(out, 'train.txt'), ids.join('\n') + '\n');
  const testFrom = f.testFrom ? resolve(f.testFrom) : fromMasks;
  let numTest = 0;
  if (testFrom && existsSync(join(testFrom, 'test.txt'))) {
    // real test masks, for 05-segmenter's evaluation only
    const test = readKvasirSeg(testFrom, { split: 'test', log: null }).records;
    for (const r of test) {
      link(r.imagePath, join(out, 'images', basename(r.imagePath)));
      link(r.maskPath!, join(out, 'masks', basename(r.maskPath!)));
    }
    copyFileSync(join(testFrom, 'test.txt'), join(out, 'test.txt'));
    numTest = test.length;
  }
  const scored = perImage.filter((r) => r.dice !== undefined);
  const avg = (k: 'dice' | 'diceBox') => scored.reduce((s, r) => s + r[k]!, 0) / Math.max(1, scored.length);
  const metrics = {
    weights: weightsPath,
    boxes: fromMasks ? join(out, 'boxes.csv') : resolve(f.boxes!),
    jitter: fromMasks ? f.jitter : null,
    size: f.size,
    images: targets.length,
    boxes_total: nBoxes,
    numTest,
    device: String((await initNode()).adapterName),
    msPerImageEmbedding: embedMs / targets.length,
    msPerBoxDecoder: decodeMs / Math.max(1, nBoxes),
    msPerBoxDecoderMedian: boxMs.sort((a, b) => a - b)[Math.floor(boxMs.length / 2)] ?? null,
    scored: scored.length,
    meanDice: scored.length ? avg('dice') : null,
    meanDiceBox: scored.length ? avg('diceBox') : null,
    perImage,
  };
  writeFileSync(join(out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  if (scored.length)
    console.log(
      `${scored.length} images: mean Dice decoder ${metrics.meanDice!.toFixed(4)}, box as the mask ` +
        `${metrics.meanDiceBox!.toFixed(4)}`,
    );
  console.log(
    `embedding ${metrics.msPerImageEmbedding.toFixed(1)} ms/image, decoder ` +
      `${metrics.msPerBoxDecoder.toFixed(1)} ms/box (median ` +
      `${metrics.msPerBoxDecoderMedian?.toFixed(1)}; with post-processing and readback); wrote ${out}`,
  );
  model.dispose();
}

if (isMain(import.meta.url)) runMain(main);
