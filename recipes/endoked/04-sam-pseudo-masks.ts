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
// The stages live beside this entry: sam-synthetic.ts (training instances, feature cache),
// sam-train.ts (the decoder's training loop), sam-boxes.ts (box sources), sam-masks.ts (pseudo-masks),
// sam-kit.ts (backbone, losses, box helpers).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';
import { loadBackbone } from './sam-kit.ts';
import { trainDecoder } from './sam-train.ts';
import { writePseudoMasks } from './sam-masks.ts';

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

export type SamFlags = NonNullable<ReturnType<typeof FLAGS.parse>>;

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
  if (!f.train && f.boxes && !f.boxesFromMasks && !existsSync(resolve(f.boxes)))
    throw new FlagError(
      `${FLAGS.script}: --boxes ${resolve(f.boxes)} does not exist; stage 3 (recipes/endoked/03-cam.ts) ` +
        `writes <out>/boxes.csv, or use --boxes-from-masks DIR`,
    );
  const weightsPath = resolve(ROOT, f.weights ?? 'runs/endoked/04-sam/weights.safetensors');
  if (!f.train && !existsSync(weightsPath))
    throw new FlagError(
      `${FLAGS.script}: --weights ${weightsPath} does not exist; train the decoder first with --train`,
    );
  const out = resolve(ROOT, f.out ?? (f.train ? 'runs/endoked/04-sam' : 'runs/endoked/04-sam/pseudo'));

  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  const backbone = loadBackbone(
    backbonePath === 'random' ? 'random' : new Uint8Array(readFileSync(backbonePath)),
    backbonePath,
  );
  try {
    if (f.train) await trainDecoder(f, backbone, backbonePath, out);
    else await writePseudoMasks(f, backbone, weightsPath, out);
  } finally {
    backbone.dispose();
    await shutdown();
  }
}

if (isMain(import.meta.url)) runMain(main);
