// Evaluation metrics (CPU, plain arrays): classification with scikit-learn's semantics and
// segmentation / multiple-instance scores.
export {
  rocCurve,
  rocAuc,
  averagePrecision,
  rocAucOvr,
  averagePrecisionOvr,
  argmax,
  confusionMatrix,
  accuracy,
  perClassScores,
  balancedAccuracy,
  f1PerClass,
  macroF1,
  classificationReport,
  type RocCurve,
  type OvrResult,
  type PerClassScores,
  type ClassificationReport,
} from './classification.ts';
export { diceIou, segmentationScores, bagAuc, type SegmentationScores } from './segmentation.ts';
export {
  bootstrapCi,
  aucCi,
  balancedAccuracyCi,
  pairedDiffCi,
  intervalsOverlap,
  quantileSorted,
  type Interval,
  type BootstrapOptions,
} from './bootstrap.ts';
