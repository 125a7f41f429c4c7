// The EndoKED models of the in-browser page, shared with Node (the browser tests run these same
// functions on Dawn and compare): the ToCo CAM classifier with EndoKED's CAM -> box rule (stage 3),
// and the SAM-style box-prompt decoder over the frozen PVTv2 backbone (stage 4). Engine, models
// and the recipes' pure helpers only: no DOM, no Node modules.
//
// Checkpoints (safetensors, engine weightsBytes):
// - ToCo CAM (recipes/endoked/03-cam.ts `cam.safetensors`): metadata `model` = 'toco_cam',
//   `config` = TocoConfig JSON (backbone.imgSize is the CAM input size S). Boxes as 03-cam.ts makes
//   them: multi-scale + flip CAM at S x S, foreground = CAM > 0.65 (EndoKED's bkg_thre), endokedBox,
//   the box scaled outwards to the original image. Deviation: 03-cam.ts first crops real frames to
//   the endoscope's field of view (engine/data/fov.ts); the page runs on the whole image.
// - SAM box prompts: one file holding the frozen Polyp-PVT-µ segmenter (`segmenter.*`, whose
//   backbone gives the features) and stage 4's decoder weights (`sam.image_encoder.neck.*`,
//   `sam.prompt_encoder.*`, `sam.mask_decoder.*`); metadata `model` = 'sam_box_prompt', `config` =
//   SamDecoderConfig JSON (inputImageSize is the frame size S). Stage 4 writes the two parts as
//   separate files; `samBundleBytes` (make-demo-assets.ts --sam-bundle) joins them. Per image: the
//   backbone's stride-8 maps and SAM's neck, once; per box: the prompt encoder and the decoder's
//   single-mask output (multimask_output false), as 04-sam-pseudo-masks.ts does.
import {
  tensor,
  tidy,
  noGrad,
  sigmoid,
  reshape,
  narrow,
  cat,
  device,
  loadWeights,
  weightsBytes,
  Module,
  type Tensor,
} from '../../engine/index.ts';
import { endokedBox, thresholdMask, scaleBox, type Box, type BoxDecision } from '../../engine/data/index.ts';
import { TocoCam, multiScaleCam } from '../../models/toco.ts';
import { PolypPVT, POLYP_PVT, FEATURE_CHANNELS, backboneFeaturesOf } from '../../models/polyp-pvt.ts';
import { SamPromptDecoder, SAM_DECODER, type SamDecoderConfig } from '../../models/sam-decoder.ts';

/** EndoKED's defaults for stage 3 (03-cam.ts --cam-scales, --cam-threshold). */
export const CAM_SCALES = [1, 0.5, 0.75, 1.25, 1.5, 1.75];
export const CAM_THRESHOLD = 0.65;

const now = () => performance.now();

/** Whether the metadata says the weights are a random initialisation (demo/test checkpoints). */
export const isUntrained = (metadata: Record<string, string>) => /random/i.test(metadata.note ?? '');

// ---- ToCo CAM -> box ---------------------------------------------------------------------------------

export interface CamBox {
  /** Normalised multi-scale + flip CAM of class 0 at the input size [S * S], in [0, 1). */
  cam: Float32Array;
  size: [number, number];
  /** sigmoid of the main classifier's logit (GMP over the final tokens) at scale 1. */
  prob: number;
  /** The box rule on CAM > threshold, in CAM pixels (S x S). */
  decision: BoxDecision;
  /** The decision's box in the original image's pixels (x1/y1 exclusive), or null. */
  box: Box | null;
  times: { upload: number; forward: number; readback: number; boxRule: number };
}

/** The first class's multi-scale CAM [S * S] and probability [1] of x [1, 3, S, S] (also the page's warm-up). */
export function camOutputs(model: TocoCam, x: Tensor, scales: readonly number[] = CAM_SCALES): [Tensor, Tensor] {
  const [, , h, w] = x.shape;
  const c = multiScaleCam(model, x, { scales }).cam; // [1, K, S, S]
  const l = model.logits(model.features(x).x4, 'main'); // [1, K]
  return [reshape(narrow(c, 1, 0, 1), [h * w]), sigmoid(narrow(l, 1, 0, 1))];
}

/** ToCo CAM of one image [3, S, S] (ImageNet-normalised) and EndoKED's box for an original `width x height` image. */
export async function camAndBox(
  model: TocoCam,
  input: Float32Array,
  width: number,
  height: number,
  opts: { scales?: readonly number[]; threshold?: number } = {},
): Promise<CamBox> {
  const { scales = CAM_SCALES, threshold = CAM_THRESHOLD } = opts;
  const im = model.cfg.backbone.imgSize,
    [h, w] = typeof im === 'number' ? [im, im] : im;
  const t0 = now();
  const x = tensor(input, [1, 3, h, w]);
  await device().sync();
  const t1 = now();
  const [cam, logit] = noGrad(() => tidy(() => camOutputs(model, x, scales)));
  await device().sync();
  const t2 = now();
  const camData = new Float32Array(await cam.data()),
    prob = (await logit.data())[0];
  const t3 = now();
  for (const t of [x, cam, logit]) t.dispose();
  const decision = endokedBox(thresholdMask(camData, threshold), w, h);
  const box = decision.box ? scaleBox(decision.box, w, h, width, height) : null;
  return {
    cam: camData,
    size: [h, w],
    prob,
    decision,
    box,
    times: { upload: t1 - t0, forward: t2 - t1, readback: t3 - t2, boxRule: now() - t3 },
  };
}

// ---- SAM box prompts ---------------------------------------------------------------------------------

/** The frozen segmenter (its backbone gives the features) and the decoder with SAM's neck. */
export class SamBoxModel extends Module {
  segmenter: PolypPVT;
  sam: SamPromptDecoder;
  constructor(readonly config: SamDecoderConfig) {
    super();
    this.segmenter = new PolypPVT(POLYP_PVT.mu);
    this.sam = new SamPromptDecoder(config, { neckInChans: FEATURE_CHANNELS });
  }
}

/** Stage 4's decoder for frames of size S (04-sam-pseudo-masks.ts decoderConfig). */
export const samConfigForSize = (size: number): SamDecoderConfig => ({
  ...SAM_DECODER.mu,
  imageEmbeddingSize: [size / 8, size / 8],
  inputImageSize: [size, size],
});

/**
 * One checkpoint for the page from stage 4's decoder weights (`weights.safetensors`) and the
 * Polyp-PVT-µ segmenter weights it was trained over (its --backbone), both loaded strictly.
 */
export async function samBundleBytes(
  decoder: Uint8Array,
  segmenter: Uint8Array,
  size: number,
  note = '',
): Promise<Uint8Array> {
  const config = samConfigForSize(size);
  const m = new SamBoxModel(config);
  try {
    loadWeights(m.sam, decoder, { source: 'decoder weights', strict: true });
    loadWeights(m.segmenter, segmenter, { source: 'segmenter weights', strict: true });
    return await weightsBytes(m, {
      model: 'sam_box_prompt',
      config: JSON.stringify(config),
      ...(note ? { note } : {}),
    });
  } finally {
    m.dispose();
  }
}

/** The image embedding [1, D, S/8, S/8] of one frame [3, S, S] in [0, 1], kept on the device. */
export async function samEmbed(m: SamBoxModel, input: Float32Array): Promise<{ embedding: Tensor; ms: number }> {
  const [h, w] = m.config.inputImageSize;
  const t0 = now();
  const embedding = noGrad(() =>
    tidy(() => m.sam.embedImage(backboneFeaturesOf(m.segmenter, tensor(input, [1, 3, h, w])))),
  );
  await device().sync();
  return { embedding, ms: now() - t0 };
}

export interface BoxMask {
  /** The prompt in the original image's pixels. */
  box: Box;
  /** Single-mask output: low-resolution logits [4h * 4w] (S/2 x S/2), and their size. */
  logits: Float32Array;
  size: [number, number];
  /** The IoU head's prediction for that mask. */
  iou: number;
  /** Prompt upload, prompt encoder + decoder, readback: one box's decoder time. */
  ms: number;
}

/** The decoder on one box (original-image pixels of a `width x height` image) over a cached embedding. */
export async function samDecodeBox(
  m: SamBoxModel,
  embedding: Tensor,
  box: Box,
  width: number,
  height: number,
): Promise<BoxMask> {
  const [s1, s0] = [m.config.inputImageSize[1], m.config.inputImageSize[0]];
  const scaled = [(box[0] * s1) / width, (box[1] * s0) / height, (box[2] * s1) / width, (box[3] * s0) / height];
  const [gh, gw] = m.config.imageEmbeddingSize,
    size: [number, number] = [4 * gh, 4 * gw],
    n = size[0] * size[1];
  const t0 = now();
  // One readback for the mask and its IoU: each read is a round trip to the GPU process in a browser.
  const both = noGrad(() =>
    tidy(() => {
      // [1, 1, 4h, 4w], [1, 1]
      const { masks, iou } = m.sam.forward(embedding, { boxes: tensor(scaled, [1, 4]) }, false);
      return cat([reshape(masks, [n]), reshape(iou, [1])], 0);
    }),
  );
  const data = await both.data();
  const ms = now() - t0;
  both.dispose();
  return { box, logits: Float32Array.from(data.subarray(0, n)), size, iou: data[n], ms };
}

/**
 * A box given by the user in image pixels: ordered, clamped to the image, at least 1 px; null if empty or not finite.
 */
export function normaliseBox(b: readonly number[], width: number, height: number): Box | null {
  if (b.length !== 4 || b.some((v) => !Number.isFinite(v))) return null;
  const x0 = Math.max(0, Math.min(b[0], b[2])),
    x1 = Math.min(width, Math.max(b[0], b[2]));
  const y0 = Math.max(0, Math.min(b[1], b[3])),
    y1 = Math.min(height, Math.max(b[1], b[3]));
  if (x1 - x0 < 1 || y1 - y0 < 1) return null;
  return [Math.round(x0), Math.round(y0), Math.round(x1), Math.round(y1)];
}
