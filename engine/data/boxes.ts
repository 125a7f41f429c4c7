// Binary masks -> 8-connected components with bounding-box statistics -> the EndoKED box rule
// that turns a thresholded CAM (stage 3) or a segmenter's prediction (stage 6) into one SAM box
// prompt, or a rejection with a reason. Pure TypeScript over flat row-major masks; shared by the
// Node recipes and the browser. Spec: recipes/SPEC.md §2.3 ("CAM -> box -> SAM").
//
// Reference: zwyang6/ENDOKED EndoKED_WSSS/datasets/data_processing_refining/sam_utils.py
// (`mask_find_bboxs`, `from_mask2box`, `from_mask2box_singlebox`) called from
// a3_generate_pseulabel_from_SAM_byCAM.py on `cam_to_label(...)` (foreground = CAM > bkg_thre,
// strictly; bkg_thre 0.65 there). What the released code does, which this file reproduces:
// - cv2.connectedComponentsWithStats(mask, connectivity=8) returns one row per label: label 0 is
//   EVERY zero pixel (the background, however many pieces it is in), labels 1..n are the 8-connected
//   foreground components. Each row carries a bounding box and a pixel count.
// - The rows are sorted by pixel count and the LAST (most pixels) is dropped, with the comment
//   "exclude the outermost component". That drops the background only while the background has
//   more pixels than every foreground component. When one foreground component outnumbers the
//   background, that component is dropped instead and the background's row (whose box is usually
//   the whole image) stays in the list; we keep exactly this. On a pixel-count tie numpy's sort
//   order is unspecified; here the background is the one dropped.
// - The area test uses the largest bounding-box area ((x1-x0)*(y1-y0), x1/y1 exclusive) among
//   the remaining rows: accept only when 0.01 < area / (H*W) < 0.35, both strict.
// - The border test looks at the whole mask: any foreground pixel in the first/last row/column
//   rejects, whichever component it belongs to.
// - Three or more remaining rows reject; no remaining row (no foreground) returns nothing.
// - Which box is returned: the issue and the spec say the largest bounding box. The released loop
//   reassigns its result on every iteration, so it actually returns the LAST remaining row (the one
//   with the most pixels); the area test still uses the largest box. `pick` selects either; the
//   default is the documented 'largest-box' (ties go to the later row, as the released `>=` does).
//   With at most two remaining rows (the only accepted case) the two differ only when the smaller
//   component by pixels has the larger box.
// The released code returns None for every rejection; the reasons below are checked in this
// fixed order and name the first rule that fails.

/** A bounding box in pixels: x0/y0 inclusive, x1/y1 exclusive (cv2's x + width). */
export type Box = [x0: number, y0: number, x1: number, y1: number];

export interface Component {
  /**
   * 0 for the background row (all zero pixels), 1..n for foreground components in raster order of their first pixel.
   */
  label: number;
  /** Pixel count. */
  area: number;
  box: Box;
}

export interface Components {
  /** Per-pixel label, 0 for background. */
  labels: Int32Array;
  /** Foreground components, label i at index i - 1. */
  components: Component[];
}

/** 8-connected components of the non-zero pixels of a row-major `height x width` mask. */
export function connectedComponents(mask: ArrayLike<number>, width: number, height: number): Components {
  if (mask.length !== width * height)
    throw new Error(`connectedComponents: mask has ${mask.length} pixels, expected ${width}x${height}`);
  const labels = new Int32Array(width * height);
  const components: Component[] = [];
  const stack: number[] = [];
  for (let start = 0; start < labels.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = components.length + 1;
    let area = 0,
      x0 = width,
      y0 = height,
      x1 = 0,
      y1 = 0;
    labels[start] = label;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop()!;
      const y = (p / width) | 0,
        x = p - y * width;
      area++;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x + 1 > x1) x1 = x + 1;
      if (y + 1 > y1) y1 = y + 1;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx,
            q = ny * width + nx;
          if (nx < 0 || nx >= width || labels[q] || !mask[q]) continue;
          labels[q] = label;
          stack.push(q);
        }
      }
    }
    components.push({ label, area, box: [x0, y0, x1, y1] });
  }
  return { labels, components };
}

/** The row cv2 reports for label 0: every zero pixel, its count and bounding box. */
export function backgroundComponent(mask: ArrayLike<number>, width: number, height: number): Component {
  let area = 0,
    x0 = width,
    y0 = height,
    x1 = 0,
    y1 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x]) continue;
      area++;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x + 1 > x1) x1 = x + 1;
      if (y + 1 > y1) y1 = y + 1;
    }
  }
  return { label: 0, area, box: area ? [x0, y0, x1, y1] : [0, 0, 0, 0] };
}

export const boxArea = (b: Box): number => Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);

/** Intersection over union of two boxes (0 when both are empty). */
export function boxIou(a: Box, b: Box): number {
  const inter = boxArea([Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])]);
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** The tight box around every non-zero pixel, or null when there is none (boxes from true masks). */
export function maskBox(mask: ArrayLike<number>, width: number, height: number): Box | null {
  let x0 = width,
    y0 = height,
    x1 = 0,
    y1 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x + 1 > x1) x1 = x + 1;
      if (y + 1 > y1) y1 = y + 1;
    }
  }
  return x1 > 0 ? [x0, y0, x1, y1] : null;
}

/** 1 where value > threshold (strictly, as `cam_to_label` does), else 0. */
export function thresholdMask(values: ArrayLike<number>, threshold: number): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] > threshold ? 1 : 0;
  return out;
}

/**
 * Maps a box from a `fromW x fromH` grid to `toW x toH` pixels, growing outwards so it still covers what it covered.
 */
export function scaleBox(b: Box, fromW: number, fromH: number, toW: number, toH: number): Box {
  const sx = toW / fromW,
    sy = toH / fromH;
  return [
    Math.max(0, Math.floor(b[0] * sx)),
    Math.max(0, Math.floor(b[1] * sy)),
    Math.min(toW, Math.ceil(b[2] * sx)),
    Math.min(toH, Math.ceil(b[3] * sy)),
  ];
}

export type BoxReason =
  'touches-border' | 'area-too-small' | 'area-too-large' | 'too-many-components' | 'no-foreground';

export interface BoxRuleOptions {
  /** Accept only when minArea < box area / image area (strict). Default 0.01. */
  minAreaFraction?: number;
  /** Accept only when box area / image area < maxArea (strict). Default 0.35. */
  maxAreaFraction?: number;
  /** Reject with this many remaining rows or more. Default 3. */
  rejectComponents?: number;
  /** Which remaining row gives the box: the largest box (spec) or the most pixels (what the released loop returns). */
  pick?: 'largest-box' | 'most-pixels';
}

export interface BoxDecision {
  /** The chosen box (in mask pixels), also when rejected for area/border/count; null only with no foreground. */
  box: Box | null;
  accepted: boolean;
  /** '' when accepted. */
  reason: BoxReason | '';
  /** Rows left after dropping the most-pixel row (foreground components, or the background's row, see header). */
  kept: Component[];
  /** Largest bounding-box area among `kept` over the image area. */
  areaFraction: number;
}

/** The EndoKED box rule (sam_utils.from_mask2box_singlebox) on a binary row-major mask. */
export function endokedBox(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  options: BoxRuleOptions = {},
): BoxDecision {
  const { minAreaFraction = 0.01, maxAreaFraction = 0.35, rejectComponents = 3, pick = 'largest-box' } = options;
  const { components } = connectedComponents(mask, width, height);
  // Ascending pixel count, background last among equals so that a tie drops it; stable otherwise.
  const rows = [...components, backgroundComponent(mask, width, height)]
    .map((c, i) => ({ c, i }))
    .sort((a, b) => a.c.area - b.c.area || (a.c.label === 0 ? 1 : b.c.label === 0 ? -1 : a.i - b.i))
    .map((r) => r.c);
  const kept = rows.slice(0, -1);
  if (kept.length === 0) return { box: null, accepted: false, reason: 'no-foreground', kept, areaFraction: 0 };
  let best = kept[0],
    bestArea = -1;
  for (const c of kept)
    if (boxArea(c.box) >= bestArea) {
      bestArea = boxArea(c.box);
      best = c;
    }
  const chosen = pick === 'largest-box' ? best : kept[kept.length - 1];
  const areaFraction = bestArea / (width * height);
  const decide = (reason: BoxReason | ''): BoxDecision => ({
    box: [...chosen.box] as Box,
    accepted: reason === '',
    reason,
    kept,
    areaFraction,
  });
  if (touchesBorder(mask, width, height)) return decide('touches-border');
  if (!(areaFraction > minAreaFraction)) return decide('area-too-small');
  if (!(areaFraction < maxAreaFraction)) return decide('area-too-large');
  if (kept.length >= rejectComponents) return decide('too-many-components');
  return decide('');
}

/** Whether any non-zero pixel lies in the first or last row or column. */
export function touchesBorder(mask: ArrayLike<number>, width: number, height: number): boolean {
  for (let x = 0; x < width; x++) if (mask[x] || mask[(height - 1) * width + x]) return true;
  for (let y = 0; y < height; y++) if (mask[y * width] || mask[y * width + width - 1]) return true;
  return false;
}
