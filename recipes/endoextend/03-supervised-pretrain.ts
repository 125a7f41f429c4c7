// Stage 3 of EndoExtend24: domain-adaptive supervised pre-training on the merged EE24 set.
// The paper's "domain-adaptive pre-training" is 10-class supervised classification on
// EndoExtend24 starting from the MIM checkpoint (spec §0, fact 3): the same loop as the CE24
// fine-tuning (stage 4: weighted sampler, plain cross-entropy, augmentations, gradient clipping,
// checkpoint kept by validation balanced accuracy), on the merged set's folds, with AdamW. The
// EE24 script itself is unpublished; a review reports 50 epochs, lr 1e-6, batch 64 for EVA-02-B.
//
// Consumes: --out/ee24.csv and class_mapping.json (stage 1), --out/mim/mim.safetensors (stage 2).
// Produces (in --out/ee24): best.safetensors (stage 4's default init), state.safetensors,
//   history.json, curves.png.
//
//   npx tsx recipes/endoextend/03-supervised-pretrain.ts --out runs/endoextend
import { fileURLToPath } from 'node:url';
import { main as train } from './04-finetune-ce24.ts';
import { shutdown } from '../../runtime-node/index.ts';
import { parseFlags } from './kit.ts';

const DEFAULTS = {
  out: 'runs/endoextend',       // output folder shared by every stage
  init: 'mim',                  // mim (stage 2) | none | <weights.safetensors>
  size: 'mu',                   // EVA-02 size: mu (CPU driver), ti, s, b, l (GPU)
  epochs: 3,                    // passes over the merged set's training folds
  batch: 32,                    // images per step
  lr: 1e-3,                     // AdamW learning rate (µ from MIM; the review's 1e-6 is for B)
  weightDecay: 0.05,            // AdamW decoupled weight decay
  clip: 0.5,                    // gradient clipping by global norm
  seed: 0,
};
const RANGES = {
  epochs: { min: 1, int: true }, batch: { min: 1, max: 4096, int: true }, lr: { min: 0, exclusiveMin: true, max: 1e6 },
  weightDecay: { min: 0, max: 1 }, clip: { min: 0, exclusiveMin: true }, seed: { min: 0, int: true },
} as const;

export async function main(argv: string[]): Promise<{ best: string; bestBalancedAccuracy: number }> {
  const cfg = parseFlags(argv, DEFAULTS, '03-supervised-pretrain', RANGES);
  return train([
    '--out', cfg.out, '--tag', 'ee24', '--data', 'ee24', '--optimizer', 'adamw', '--init', cfg.init, '--size', cfg.size,
    '--epochs', String(cfg.epochs), '--batch', String(cfg.batch), '--lr', String(cfg.lr), '--weightDecay', String(cfg.weightDecay),
    '--clip', String(cfg.clip), '--decay', '1', '--seed', String(cfg.seed),
  ]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
  await shutdown();
}
