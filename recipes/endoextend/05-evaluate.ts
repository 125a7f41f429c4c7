// Stage 5 of EndoExtend24: evaluation on the CE24 test set with the challenge's metrics (spec
// §1.1, §1.3): softmax probabilities, then macro AUC (one-vs-rest), balanced accuracy (the
// ranking uses their mean), macro F1, mAP, per-class AUC and AP, and the confusion matrix of the
// argmax predictions.
//
// Consumes: --weights (a classifier checkpoint, default --out/finetune/best.safetensors) and
//   --out/ce24-test.csv + class_mapping.json (stage 1).
// Produces (in --out/<tag>): metrics.json, roc.png, confusion.png, metrics.md (a table),
//   predictions.csv (per test frame: id, source, group, image, label, class probabilities).
//
//   npx tsx recipes/endoextend/05-evaluate.ts --out runs/endoextend --tag finetune
import { existsSync, writeFileSync } from 'node:fs';
import { classificationReport, rocCurve } from '../../engine/metrics/index.ts';
import { rocChart, confusionMatrixChart } from '../../runtime-node/plots.ts';
import { loadWeights, parseSafetensors } from '../../engine/index.ts';
import { serialiseCsv } from '../../engine/data/index.ts';
import { Eva02 } from '../../models/eva02.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readEe24Csv } from '../../runtime-node/datasets.ts';
import { readIfExists } from '../../runtime-node/checkpoint.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writePng } from '../../runtime-node/plots.ts';
import { SIZES, modelConfig, imageSizeOf, predict, ensureDir, join } from './kit.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

export const FLAGS = defineFlags(
  'recipes/endoextend/05-evaluate.ts',
  'Score a classifier on the CE24 test set with the challenge metrics.',
  {
    out: { type: 'string', default: 'runs/endoextend', help: 'output folder shared by every stage' },
    tag: { type: 'string', default: 'finetune', help: 'which run to evaluate (its folder holds best.safetensors)' },
    weights: { type: 'string', default: '', help: 'a checkpoint path (default: --out/<tag>/best.safetensors)' },
    size: { type: 'string', default: 'mu', choices: SIZES, help: "the checkpoint's EVA-02 size" },
    batch: { type: 'int', default: 64, min: 1, max: 4096, help: 'images per forward pass' },
  },
);

export interface EvalResult {
  macroAuc: number;
  balancedAccuracy: number;
  macroF1: number;
  mAP: number;
  accuracy: number;
  challengeScore: number;
  perClass: { name: string; auc: number; ap: number; support: number }[];
}

export async function main(argv: string[]): Promise<EvalResult | null> {
  const cfg = FLAGS.parse(argv);
  if (!cfg) return null;
  await initNode();
  const dir = ensureDir(join(cfg.out, cfg.tag));
  const weights = cfg.weights || join(dir, 'best.safetensors');
  const bytes = readIfExists(weights);
  if (!bytes)
    throw new Error(`${weights} does not exist: run recipes/endoextend/04-finetune-ce24.ts first (or pass --weights)`);

  const csv = join(cfg.out, 'ce24-test.csv');
  if (!existsSync(csv)) throw new Error(`${csv} does not exist: run recipes/endoextend/01-build-dataset.ts first`);
  const test = readEe24Csv(csv, { classMapping: join(cfg.out, 'class_mapping.json'), log: null }).records;
  // The head's width comes from the checkpoint (10 CE24 classes, or 2 for the real binary tasks).
  const header = parseSafetensors(bytes).metadata ?? {};
  const numClasses = header.config ? (JSON.parse(header.config) as { numClasses: number }).numClasses : 10;
  const model = new Eva02(modelConfig(cfg.size, numClasses));
  const { metadata } = loadWeights(model, bytes, { source: weights });
  const names: string[] = metadata.classes
    ? JSON.parse(metadata.classes)
    : Array.from({ length: numClasses }, (_, k) => `class ${k}`);

  const bar = new Progress({ total: test.length, label: 'evaluate', unit: 'img' });
  let last = 0;
  const probs = await predict(model, test, names.length, imageSizeOf(model.cfg), cfg.batch, (done) => {
    bar.tick(done - last);
    last = done;
  });
  const labels = test.map((r) => r.label!);
  const rep = classificationReport(probs, labels, names);

  const support = names.map((_, k) => labels.filter((y) => y === k).length);
  const result: EvalResult = {
    macroAuc: rep.macroAuc,
    balancedAccuracy: rep.balancedAccuracy,
    macroF1: rep.macroF1,
    mAP: rep.mAP,
    accuracy: rep.accuracy,
    challengeScore: (rep.macroAuc + rep.balancedAccuracy) / 2,
    perClass: names.map((name, k) => ({ name, auc: rep.auc[k], ap: rep.ap[k], support: support[k] })),
  };
  // Per-frame probabilities, for reports that slice by source or bootstrap the test set.
  writeFileSync(
    join(dir, 'predictions.csv'),
    serialiseCsv([
      ['id', 'dataset', 'patient_id', 'image', 'label', ...names.map((n) => `p_${n}`)],
      ...test.map((r, i) => [
        r.id,
        r.dataset ?? '',
        r.patientId ?? '',
        r.imagePath,
        labels[i],
        ...names.map((_, k) => probs[i * names.length + k]),
      ]),
    ]),
  );
  writeFileSync(
    join(dir, 'metrics.json'),
    JSON.stringify(
      { weights, testFrames: test.length, ...result, confusion: rep.confusion, warnings: rep.warnings },
      null,
      2,
    ),
  );
  const curves = names
    .map((name, k) => {
      const c = rocCurve(
        Float64Array.from(labels, (y) => (y === k ? 1 : 0)),
        Float64Array.from(labels, (_, i) => probs[i * names.length + k]),
      );
      return { name, fpr: c.fpr, tpr: c.tpr, auc: rep.auc[k] };
    })
    .filter((c) => Number.isFinite(c.auc));
  await writePng(join(dir, 'roc.png'), rocChart(curves, { title: `ROC, test (macro AUC ${rep.macroAuc.toFixed(3)})` }));
  await writePng(
    join(dir, 'confusion.png'),
    confusionMatrixChart(rep.confusion, names, { title: 'Confusion matrix (rows: true class)' }),
  );
  const table = [
    `| metric | value |`,
    `|---|---|`,
    ...[
      ['macro AUC', rep.macroAuc],
      ['balanced accuracy', rep.balancedAccuracy],
      ['(AUC + BA) / 2', result.challengeScore],
      ['macro F1', rep.macroF1],
      ['mAP', rep.mAP],
      ['accuracy', rep.accuracy],
    ].map(([k, v]) => `| ${k} | ${(v as number).toFixed(4)} |`),
    '',
    `| class | support | AUC | AP |`,
    `|---|---|---|---|`,
    ...result.perClass.map((c) => `| ${c.name} | ${c.support} | ${c.auc.toFixed(4)} | ${c.ap.toFixed(4)} |`),
  ].join('\n');
  writeFileSync(join(dir, 'metrics.md'), table + '\n');
  console.log(`\n${cfg.tag} on ${test.length} test frames:\n${table}`);
  return result;
}

if (isMain(import.meta.url)) runMain((argv) => main(argv).finally(shutdown));
