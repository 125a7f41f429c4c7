// The per-preset budgets of the EndoKED end-to-end run (run-all.ts): model sizes, lengths and the
// stage flags each preset (--config cpu|gpu, --data synthetic|real, --quick) hands to the stage
// scripts. The deviations for the CPU driver are measured in recipes/endoked/README.md §2-3.
import type { RunFlags } from './run-all.ts';

/**
 * Budgets per preset: every entry is a flag of the stage it goes to. On the CPU driver the MIL
 * stage uses the Adam deviation its script offers for CPU-sized runs (reference: SGD lr 1e-3 over
 * 1000 epochs, out of reach here); every other stage keeps its script's defaults except lengths.
 */
export function budgetFor(f: RunFlags) {
  const cpu = f.config === 'cpu',
    real = f.data === 'real';
  if (f.quick) {
    return {
      patients: 12,
      setSize: 64,
      milArgs: ['--epochs', '2'],
      camArgs: ['--steps', '4', '--overlays', '2', '--no-grad-cam'],
      samTrainSteps: 4,
      samTrainImages: 16,
      samSize: 64,
      backboneSteps: 2,
      backboneSize: 64,
      segSteps: 2,
      segSize: 64,
      segBatch: 4,
      kvasirN: 16,
      kvasirSize: 64,
    };
  }
  return {
    patients: 120,
    setSize: 128,
    // Real frames on the CPU driver: the MIL flags measured in recipes/endoked/README.md §2 (64², GroupNorm,
    // no dropout, no StuFilter); CAM without Kvasir-SEG in training (Kvasir positives against PolypGen
    // negatives teach the source, not the polyp: §3), its train images still get boxes.
    milArgs: cpu
      ? [
          '--epochs',
          real ? '30' : '10',
          '--optimizer',
          'adam',
          '--lr',
          '1e-3',
          '--batch-size',
          '16',
          ...(real
            ? [
                '--image-size',
                '64',
                '--encoder-norm',
                'group',
                '--dropout',
                '0',
                '--head-init',
                'pytorch',
                '--smooth-e',
                '1000',
              ]
            : []),
        ]
      : ['--epochs', '200'],
    // (--box-limit: boxes for 300 evenly spaced Kvasir-SEG train images on the CPU driver, 1-2 s each.)
    camArgs: [
      ...(cpu ? ['--steps', real ? '250' : '200'] : ['--steps', '3000']),
      ...(real ? ['--no-kvasir-train', '--no-grad-cam', ...(cpu ? ['--box-limit', '300'] : [])] : []),
    ],
    // The Polyp-PVT trainings run at 64² on the CPU driver (rates 64/64/64: one scale, a deviation
    // for time; 96² costs about 3x more per step on a shared 2-core machine).
    samTrainSteps: cpu ? 400 : 4000,
    samTrainImages: 400,
    samSize: 128,
    backboneSteps: cpu ? 40 : 2000,
    backboneSize: cpu ? 64 : 128,
    segSteps: f.segSteps ?? (cpu ? (real ? 150 : 30) : 2000),
    segSize: cpu ? 64 : 352,
    segBatch: 8,
    kvasirN: 200,
    kvasirSize: 256,
  };
}

export type Budget = ReturnType<typeof budgetFor>;
