// Seeded synthetic GI-endoscopy data: the project's embedded default datasets (no download).
// Colonoscopy frames with exact polyp masks (a Kvasir-SEG stand-in), capsule frames for the
// ten Capsule Vision 2024 classes (a CE24 / EndoExtend24 stand-in) and patients with frame bags
// and free-text reports (an EndoKED stand-in), and close-up polyp frames with pathology types
// (EndoKED's optical biopsy). runtime-node/synth.ts writes them to disk in the
// layouts the dataset readers read. Random streams (rng, hashSeed) come from engine/data.
export {
  Canvas,
  noiseField,
  blur121,
  blurCanvas,
  randomBlob,
  blobBounds,
  forEachInBlob,
  strokePath,
  paint,
  randomWalk,
  overlayMask,
  tileGrid,
  type RgbImage,
  type MaskImage,
  type Rgb,
  type BlobShape,
} from './raster.ts';
export {
  sampleColonoscopyScene,
  renderColonoscopy,
  polypSample,
  type ColonoscopyScene,
  type ColonoscopyOptions,
  type PolypSpec,
  type SegmentationSample,
} from './colonoscopy.ts';
export {
  CE24_CLASSES,
  CAPSULE_CLASS_WEIGHTS,
  CAPSULE_SOURCES,
  renderCapsule,
  capsuleSet,
  allocate,
  type CapsuleClass,
  type CapsuleScene,
  type CapsuleItem,
  type CapsuleSetOptions,
} from './capsule.ts';
export {
  SEGMENTS,
  reportSet,
  reportForLabel,
  type Segment,
  type PolypFinding,
  type PatientFrame,
  type PatientCase,
  type ReportSetOptions,
} from './reports.ts';
export {
  PATHOLOGY_TYPES,
  PATHOLOGY_GROUPS,
  pathologyClass,
  pathologySet,
  renderPathologyFrame,
  type PathologyType,
  type PathologyClasses,
  type PitPattern,
  type PathologyPolyp,
  type PathologyFrame,
  type PathologyPatient,
  type PathologySetOptions,
} from './pathology.ts';
