// The page's state, in two parts. `state`: what the browser tests read (`globalThis.__page`): what
// is loaded, what ran on which image, what failed, and how the requests settled; the page's modules
// write it and nothing reads it back. `live`: the working objects the modules share (the loaded
// model, the decoded picture, the last run's outputs and tensors), which stay out of `__page`
// because they hold GPU buffers and bitmaps.
import type { Tensor } from '../../engine/index.ts';
import type { ModelKind, LoadedModel, Classification, Segmentation } from './infer.ts';
import type { CamBox, BoxMask } from './endoked.ts';
import type { RgbaImage } from './preprocess.ts';
import type { ModelCard, CatalogEntry } from './catalog.ts';
import type { AdapterChoice } from '../index.ts';
import type { BatchState } from './batch.ts';
import type { CameraState } from './camera.ts';

/** The image and model a result was computed for. */
export interface ResultFor {
  image: string;
  checksum: string;
  model: string;
}

export type Result =
  | {
      kind: 'eva02';
      for: ResultFor;
      probs: number[];
      cam: number[];
      grid: [number, number];
      top: { index: number; name: string; p: number }[];
    }
  | { kind: 'polyp-pvt'; for: ResultFor; prob: number[]; size: [number, number]; maskArea: number }
  | {
      kind: 'toco-cam';
      for: ResultFor;
      cam: number[];
      size: [number, number];
      prob: number;
      camBox: number[] | null;
      box: number[] | null;
      accepted: boolean;
      reason: string;
      untrained: boolean;
    }
  | {
      kind: 'sam-box';
      for: ResultFor;
      embedMs: number;
      untrained: boolean;
      boxes: { box: number[]; logits: number[]; size: [number, number]; iou: number; ms: number }[];
    };

export interface PageState {
  status: 'starting' | 'ready' | 'error';
  error?: string;
  featureLevel?: string;
  adapter?: string;
  /** null: the browser does not disclose the adapter. */ cpuFallback?: boolean | null;
  renderer?: string;
  adapterChoice?: AdapterChoice;
  selfCheck?: number[];
  timings: Record<string, number>;
  /** Settled requests (checkpoint loads, image picks, box prompts): done, failed or superseded. */
  actions: number;
  outcomes: { done: number; failed: number; superseded: number };
  /** Inference runs that finished and were shown. */
  runs: number;
  busy: boolean;
  busyWhat: string | null;
  catalog: { url: string; label: string; untrained: boolean; card: boolean; cardError: string | null }[];
  model: {
    kind: ModelKind;
    source: string;
    classes?: string[];
    untrained: boolean;
    card: ModelCard | null;
    numParameters: number;
    inputSize: [number, number];
    notes: string[];
  } | null;
  modelError: string | null;
  image: { name: string; width: number; height: number; checksum: string } | null;
  imageError: string | null;
  result: Result | null;
  resultError: string | null;
  /** The display settings (mask threshold, overlay opacity, the CAM's class: -1 for the top one). */
  view: { threshold: number; opacity: number; camClass: number };
  /** The camera loop (page/camera.ts): frames run and frames per second. */
  camera: CameraState | null;
  /** The last batch of images and its rows (page/batch.ts). */
  batch: BatchState | null;
  /** The out-of-domain check of the shown result (page/domain.ts). */
  domain: { z: number[]; far: string[]; lowConfidence: boolean; topProbability: number | null } | null;
  /** Dice / IoU of the shown mask against a loaded ground-truth mask. */
  truth: { name: string; width: number; height: number; threshold: number; dice: number; iou: number } | null;
}

export const state: PageState = {
  status: 'starting',
  timings: {},
  actions: 0,
  outcomes: { done: 0, failed: 0, superseded: 0 },
  runs: 0,
  busy: false,
  busyWhat: null,
  catalog: [],
  model: null,
  modelError: null,
  image: null,
  imageError: null,
  result: null,
  resultError: null,
  view: { threshold: 0.5, opacity: 1, camClass: -1 },
  truth: null,
  domain: null,
  batch: null,
  camera: null,
};
(globalThis as unknown as { __page: PageState }).__page = state;

/** The image the results are for: a decoded file or sample, or the camera's last frame. */
export interface Picture {
  bitmap: ImageBitmap;
  pixels: RgbaImage;
  name: string;
  checksum: string;
  decodeMs: number;
}

/** The last result's outputs, kept to redraw it (threshold, overlay, CAM class) and to run box prompts. */
export type LastRun =
  | { kind: 'eva02'; r: Classification }
  | { kind: 'polyp-pvt'; r: Segmentation }
  | { kind: 'toco-cam'; r: CamBox }
  | { kind: 'sam-box'; embedding: Tensor; embedMs: number; last: BoxMask | null; count: number };

export interface Live {
  model: LoadedModel | null;
  picture: Picture | null;
  lastRun: LastRun | null;
  /** The served checkpoints (/checkpoints.json), with their model cards. */
  catalog: CatalogEntry[];
  /** A ground-truth mask for the shown image (cleared with its result). */
  truth: { name: string; pixels: RgbaImage } | null;
  /** The result panel's text when there is no result (index.html's, read at start). */
  emptyText: string;
  /** Whether the camera loop should go on (the toggle's second press clears it). */
  cameraWanted: boolean;
}

export const live: Live = {
  model: null,
  picture: null,
  lastRun: null,
  catalog: [],
  truth: null,
  emptyText: '',
  cameraWanted: false,
};
