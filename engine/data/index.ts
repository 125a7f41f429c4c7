// Data: dataset layouts as text (CSV, EndoExtend24 rows, class and label mappings, patient-wise
// folds, split files) and the seeded synthetic datasets. Pure TypeScript; the Node runtime
// (runtime-node/datasets.ts, image.ts, synth.ts) reads and writes the files.
export * from './layouts.ts';
export * from './synthetic/index.ts';
export * from './boxes.ts';
