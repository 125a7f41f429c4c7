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
import { main as train } from './04-finetune-ce24.ts';
import { shutdown } from '../../runtime-node/index.ts';
import { SIZES, TRAIN_STEP_FLAGS, trainStepArgs } from './kit.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

export const FLAGS = defineFlags(
  'recipes/endoextend/03-supervised-pretrain.ts',
  "Supervised EE24 pre-training: stage 4's loop on the merged set, from the MIM weights.",
  {
    out: { type: 'string', default: 'runs/endoextend', help: 'output folder shared by every stage' },
    init: { type: 'string', default: 'mim', help: 'mim (stage 2) | none | <weights.safetensors>' },
    size: { type: 'string', default: 'mu', choices: SIZES, help: 'EVA-02 size: mu (CPU driver), ti, s, b, l (GPU)' },
    epochs: { type: 'int', default: 3, min: 1, help: "passes over the merged set's training folds" },
    batch: { type: 'int', default: 32, min: 1, max: 4096, help: 'images per step' },
    lr: {
      type: 'number',
      default: 1e-3,
      min: 0,
      exclusiveMin: true,
      max: 1e6,
      help: "AdamW learning rate (µ from MIM; the review's 1e-6 is for B)",
    },
    weightDecay: { type: 'number', default: 0.05, min: 0, max: 1, help: 'AdamW decoupled weight decay' },
    clip: { type: 'number', default: 0.5, min: 0, exclusiveMin: true, help: 'gradient clipping by global norm' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of the model, augmentation and data order' },
    ...TRAIN_STEP_FLAGS,
  },
);

export async function main(argv: string[]): Promise<{ best: string; bestBalancedAccuracy: number } | null> {
  const cfg = FLAGS.parse(argv);
  if (!cfg) return null;
  return train([
    '--out',
    cfg.out,
    '--tag',
    'ee24',
    '--data',
    'ee24',
    '--optimizer',
    'adamw',
    '--init',
    cfg.init,
    '--size',
    cfg.size,
    '--epochs',
    String(cfg.epochs),
    '--batch',
    String(cfg.batch),
    '--lr',
    String(cfg.lr),
    '--weight-decay',
    String(cfg.weightDecay),
    '--clip',
    String(cfg.clip),
    '--decay',
    '1',
    '--seed',
    String(cfg.seed),
    ...trainStepArgs(cfg),
  ]);
}

if (isMain(import.meta.url)) runMain((argv) => main(argv).finally(shutdown));
