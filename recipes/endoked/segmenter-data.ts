// The data side of the segmenter recipe (05-segmenter.ts, spec §2.5): the run's settings record,
// the dataset folder (Kvasir-SEG layout, or the seeded synthetic polyp set written on first use),
// both splits checked file by file before any training (every bad file named at once), and the
// training batches: decoded at the training size as [0, 1] RGB with no augmentation (as
// zwyang6/ENDOKED EndoKED_SEG/Train.py = DengPingFan/Polyp-PVT), cached on the cpu config,
// prefetched while the previous batch trains.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RandomSampler, DataOrder, Loader, imagesToChw, masksToChw } from '../../engine/index.ts';
import { readKvasirSeg, type ImageRecord } from '../../runtime-node/datasets.ts';
import { loadSegSample, checkSegSplit, type SegSample } from '../../runtime-node/seg-samples.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { dataIdentity, RunGuardError, type DataIdentity } from '../../runtime-node/run-guard.ts';

/** Everything a segmenter run is set to: its flags and the constants 05-segmenter.ts fixes. */
export interface SegSettings {
  script: string;
  /** The repository root (default data and synthetic-set locations). */
  root: string;
  /** --data as given: a folder, 'synthetic', or undefined (shared Kvasir-SEG when present). */
  data: string | undefined;
  configName: 'cpu' | 'gpu';
  modelPreset: 'mu' | 'b2';
  trainSize: number;
  rates: number[];
  /** The training size at each rate, rounded to a multiple of 32. */
  scaledSizes: number[];
  batchSize: number;
  epochs: number;
  maxSteps: number | undefined;
  maxMinutes: number | undefined;
  lr: number;
  weightDecay: number;
  threshold: number;
  clipValue: number;
  faithfulBce: boolean;
  /** --amp, --loss-scale, --checkpoint-blocks (runtime-node/amp.ts). */
  amp: boolean;
  lossScale: number;
  checkpointBlocks: boolean;
  evalBatch: number;
  ckptEvery: number;
  logEvery: number;
  numOverlays: number;
  prefetch: number;
  cacheDecoded: boolean;
  seed: number;
  syntheticN: number;
  syntheticSize: number;
  checkData: 'headers' | 'full';
  resume: boolean;
  outDir: string;
  initPath: string | undefined;
}

export interface SegData {
  dataRoot: string;
  train: ImageRecord[];
  test: ImageRecord[];
}

/** The dataset folder (writing the synthetic set on first use) and its two splits. */
export async function openData(s: SegSettings): Promise<SegData> {
  const sharedKvasir = resolve(s.root, '..', 'shared', 'data', 'kvasir-seg');
  let dataRoot: string;
  if (s.data === 'synthetic' || (s.data === undefined && !existsSync(sharedKvasir))) {
    dataRoot = join(s.root, 'out', 'synthetic', `polyp-n${s.syntheticN}-s${s.syntheticSize}-seed${s.seed}`);
    if (!existsSync(join(dataRoot, 'test.txt'))) {
      console.log(`writing the synthetic polyp set (${s.syntheticN} frames, ${s.syntheticSize}²) to ${dataRoot}`);
      await writePolypSet(dataRoot, s.syntheticN, {
        seed: s.seed,
        width: s.syntheticSize,
        height: s.syntheticSize,
        force: true,
      });
    }
  } else {
    dataRoot = resolve(s.data ?? sharedKvasir);
    if (!existsSync(dataRoot)) {
      throw new RunGuardError(
        [
          `${s.script}: dataset folder "${dataRoot}" does not exist. Put Kvasir-SEG there ` +
            '(images/, masks/, train.txt, test.txt;',
          '  https://datasets.simula.no/kvasir-seg/ with the PraNet/Polyp-PVT test split of 100 ids), ' +
            'pass --data <folder>,',
          '  or train on generated data with --data synthetic.',
        ].join('\n'),
      );
    }
  }
  try {
    const train = readKvasirSeg(dataRoot, { split: 'train' }).records;
    const test = readKvasirSeg(dataRoot, { split: 'test', log: null }).records;
    return { dataRoot, train, test };
  } catch (e) {
    throw new RunGuardError(
      `${s.script}: ${e instanceof Error ? e.message : e}\n  (expected the Kvasir-SEG layout: images/, ` +
        `masks/, train.txt, test.txt; or use --data synthetic)`,
    );
  }
}

/** What a training state records of its data, so that a state trained on other data is not resumed. */
export function identityOf(d: SegData): DataIdentity {
  return dataIdentity(
    { data: d.dataRoot },
    {
      train: d.train.map((r) => ({ id: r.id, files: [r.imagePath, r.maskPath] })),
      test: d.test.map((r) => ({ id: r.id, files: [r.imagePath, r.maskPath] })),
    },
  );
}

/** Every file of both splits, before any training: a bad one fails now, all named at once. */
export async function checkSplits(s: SegSettings, d: SegData): Promise<void> {
  for (const [name, recs] of [
    ['train', d.train],
    ['test', d.test],
  ] as const) {
    const c = await checkSegSplit(recs, s.checkData);
    if (c.problems.length) {
      throw new RunGuardError(
        `${s.script}: ${c.problems.length} bad file(s) in the ${name} split of ${d.dataRoot}:\n  ` +
          `${c.problems.join('\n  ')}\n` +
          `Fix or remove them (and their ids in ${name}.txt), or pass another --data.`,
      );
    }
    if (c.masksRead > 0 && c.emptyMasks === c.masksRead) {
      console.warn(
        `warning: every ${name} mask read ` +
          `(${c.masksRead}${c.masksRead < recs.length ? ` spread over ${recs.length}` : ''}) in ` +
          `${d.dataRoot} is empty (no foreground pixel): check the masks' format; training and Dice ` +
          `would be meaningless`,
      );
    }
  }
}

/** The seeded, resumable order of the training batches. */
export function trainOrder(s: SegSettings, d: SegData): DataOrder {
  return new DataOrder(new RandomSampler(d.train.length), { batchSize: s.batchSize, seed: s.seed });
}

/** Training batches in `order` (create it after the order is resumed: the loader starts from its state). */
export function trainLoader(s: SegSettings, d: SegData, order: DataOrder) {
  const cache = new Map<number, SegSample>();
  async function loadTrain(i: number): Promise<SegSample> {
    const hit = cache.get(i);
    if (hit) return hit;
    const sample = await loadSegSample(d.train[i], [s.trainSize, s.trainSize]);
    if (s.cacheDecoded) cache.set(i, sample);
    return sample;
  }
  return new Loader({
    order,
    prefetch: s.prefetch,
    load: loadTrain,
    collate: (items: SegSample[]) => ({
      images: imagesToChw(items.map((x) => x.image)),
      masks: masksToChw(items.map((x) => x.mask)),
    }),
  });
}
export type TrainLoader = ReturnType<typeof trainLoader>;
