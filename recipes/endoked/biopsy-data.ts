// The data of the optical-biopsy recipe (07-optical-biopsy.ts, spec §2.7): a pathology set
// (runtime-node/pathology-set.ts; or the seeded synthetic one, written once), split 70/30 by
// patient (the set's split column when it has one, else seeded here, as [K] zwyang6/ENDOKED
// EndoKED_MIL/fine_tuning_Encoder_for_pathology_withGTInstanceLabel.py splits), both splits
// checked to hold both classes, and every frame decoded once at the encoder's input size.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Rng } from '../../engine/index.ts';
import type { RgbImage } from '../../engine/data/index.ts';
import { readPathologySet, type PathologyRecord } from '../../runtime-node/pathology-set.ts';
import { decodeImageResized } from '../../runtime-node/image.ts';
import { writePathologySet } from '../../runtime-node/synth.ts';
import { FlagError } from '../../runtime-node/flags.ts';
import type { BiopsyFlags } from './07-optical-biopsy.ts';

export interface BiopsyData {
  /** The set's labels.csv. */
  csv: string;
  train: PathologyRecord[];
  test: PathologyRecord[];
  /** Every frame, decoded at the training size. */
  imageOf: Map<PathologyRecord, RgbImage>;
}

/** The set (written first with --data synthetic), its patient split, and its frames at size x size. */
export async function openData(f: BiopsyFlags, root: string, script: string, size: number): Promise<BiopsyData> {
  let dataPath: string;
  if (f.data === 'synthetic') {
    dataPath = join(root, 'out', 'endoked', `pathology-set-n${f.syntheticPatients}-s${f.syntheticSize}-seed${f.seed}`);
    if (!existsSync(join(dataPath, 'labels.csv'))) {
      console.log(
        `writing the synthetic pathology set (${f.syntheticPatients} patients, ${f.syntheticSize}²) to ${dataPath}`,
      );
      await writePathologySet(dataPath, f.syntheticPatients, {
        seed: f.seed,
        width: f.syntheticSize,
        height: f.syntheticSize,
        force: true,
      });
    }
  } else dataPath = resolve(f.data);
  const set = readPathologySet(dataPath, { classes: 2 });
  const records = set.records;
  if (records.some((r) => !r.split)) splitByPatient(records, f.seed);
  const train = records.filter((r) => r.split === 'train'),
    test = records.filter((r) => r.split === 'test');
  if (f.jitter.length !== 4 || f.jitter[3] > 0.5)
    throw new FlagError(`${script}: --jitter needs 4 values (brightness,contrast,saturation,hue), hue at most 0.5`);
  for (const [name, rs] of [
    ['train', train],
    ['test', test],
  ] as const) {
    const pos = rs.filter((r) => r.label === 1).length;
    if (pos === 0 || pos === rs.length)
      throw new Error(
        `${set.csv}: the ${name} split has ${rs.length} frames, ${pos} neoplastic: it needs both classes`,
      );
  }
  const count = (rs: PathologyRecord[]) =>
    `${rs.length} frames / ${new Set(rs.map((r) => r.patientId)).size} patients, ` +
    `${rs.filter((r) => r.label === 1).length} neoplastic frames`;
  console.log(`data: ${set.csv}: train ${count(train)}; test ${count(test)}`);
  const images: RgbImage[] = [];
  for (let i = 0; i < records.length; i += 32)
    images.push(
      ...(await Promise.all(records.slice(i, i + 32).map((r) => decodeImageResized(r.imagePath, size, size)))),
    );
  return { csv: set.csv, train, test, imageOf: new Map(records.map((r, i) => [r, images[i]])) };
}

/** A fixed 70/30 split by patient (seeded), for sets without a split column. */
function splitByPatient(records: PathologyRecord[], seed: number): void {
  const ids = [...new Set(records.map((r) => r.patientId))].sort();
  const r = new Rng(seed + 0x5eed);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = r.below(i + 1);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const train = new Set(ids.slice(0, Math.floor(0.7 * ids.length)));
  for (const rec of records) rec.split = train.has(rec.patientId) ? 'train' : 'test';
}
