// DOM side of the page's EndoKED modes: the ToCo CAM heat map with EndoKED's box (or why the box
// rule rejected it), and the box-prompt mode (drag a box on the image with the pointer, or type
// it into the x0/y0/x1/y1 fields) with the decoder's mask, predicted IoU and timings. The numbers
// come from endoked.ts; result.ts decides what runs and when, state.ts holds the state.
import { heatLayer, maskLayer, heatColor } from './overlay.ts';
import { $, drawView, viewSize, untrainedBadge } from './render.ts';
import type { CamBox, BoxMask } from './endoked.ts';
import type { Box } from '../../engine/data/index.ts';

const REASONS: Record<string, string> = {
  'touches-border': 'the foreground touches the image border',
  'area-too-small': 'the box covers 1% of the image or less',
  'area-too-large': 'the box covers 35% of the image or more',
  'too-many-components': 'the CAM has three or more separate regions',
  'no-foreground': 'no CAM value is above the threshold',
};

const legend = () =>
  `linear-gradient(to right, ` +
  `${[0, 0.2, 0.4, 0.6, 0.8, 1].map((t) => `rgb(${heatColor(t).map(Math.round).join(',')}) ${t * 100}%`).join(', ')})`;

/** Outlines `box` (image pixels) on the view canvas. */
export function strokeBox(box: Box, img: { width: number; height: number }, color: string, dashed = false): void {
  const canvas = $<HTMLCanvasElement>('view'),
    ctx = canvas.getContext('2d')!;
  const sx = canvas.width / img.width,
    sy = canvas.height / img.height;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  if (dashed) ctx.setLineDash([6, 4]);
  ctx.strokeRect(
    box[0] * sx + 1,
    box[1] * sy + 1,
    Math.max(1, (box[2] - box[0]) * sx - 2),
    Math.max(1, (box[3] - box[1]) * sy - 2),
  );
  ctx.restore();
}

const untrainedNote = (untrained: boolean, what: string) => (untrained ? untrainedBadge(what) : '');

/** The CAM result: heat map over the image, the box (solid: accepted; dashed red: rejected), the decision. */
export function renderCam(r: CamBox, img: ImageBitmap, overlay: boolean, threshold: number, untrained: boolean): void {
  const [w, h] = viewSize(img.width, img.height),
    [sh, sw] = r.size;
  drawView(img, overlay ? heatLayer(r.cam, sh, sw, w, h) : null);
  if (r.box) strokeBox(r.box, img, r.decision.accepted ? '#3dff8a' : '#ff5a5a', !r.decision.accepted);
  $('caption').textContent = `multi-scale + flip CAM (${sh}×${sw}), box from CAM > ${threshold}`;
  const d = r.decision,
    b = r.box;
  const verdict = d.accepted
    ? `<b style="color:#3dff8a">accepted</b>`
    : `<b style="color:#ff8f8f">rejected</b>: <span id="cam-reason">${d.reason}</span> (${REASONS[d.reason] ?? ''})`;
  const boxText = b ? `x0 ${b[0]}, y0 ${b[1]}, x1 ${b[2]}, y1 ${b[3]} (image pixels, x1/y1 exclusive)` : 'no box';
  $('result-side').innerHTML = [
    `<h3>ToCo CAM → EndoKED box</h3>${untrainedNote(untrained, 'the heat map and the box')}`,
    `<div class="kv">Polyp score (sigmoid of the GMP logit): <b>${r.prob.toFixed(3)}</b></div>`,
    `<div class="kv">Box: ${verdict}</div>`,
    `<div class="kv">${boxText}</div>`,
    `<div class="kv">Components kept: ${d.kept.length}; ` +
      `largest box ${(100 * d.areaFraction).toFixed(1)}% of the image</div>`,
    `<div class="legend" style="background:${legend()}"></div>` +
      '<div class="legend-labels dim"><span>0</span><span>1</span></div>',
    `<div class="dim" style="margin-top:8px">EndoKED's rule: 8-connected regions of CAM &gt; ${threshold}, ` +
      'the region with the most pixels dropped as background,',
    'the largest remaining box kept; rejected when the foreground touches a border, the box is outside 1–35% ' +
      'of the image, or three or more regions remain.',
    "The page runs on the whole image (stage 3 first crops real frames to the endoscope's field of view).</div>",
  ].join('\n');
}

/** The box-prompt view: the image, the last mask and its box; the side panel with IoU and timings. */
export function renderSam(
  img: ImageBitmap,
  last: BoxMask | null,
  overlay: boolean,
  embedMs: number,
  untrained: boolean,
  count: number,
): void {
  const [w, h] = viewSize(img.width, img.height);
  const layer = last && overlay ? maskLayer(sigmoidAll(last.logits), last.size[0], last.size[1], w, h, 0.5).rgba : null;
  drawView(img, layer);
  if (last) strokeBox(last.box, img, '#5aa9f0');
  $('caption').textContent = last
    ? `mask logits > 0 (${last.size[0]}×${last.size[1]}, upsampled)`
    : 'drag a box on the image, or type one below';
  const b = last?.box;
  const boxLines = last
    ? [
        `<div class="kv">Box: x0 ${b![0]}, y0 ${b![1]}, x1 ${b![2]}, y1 ${b![3]}</div>`,
        `<div class="kv">Predicted IoU: <b id="sam-iou">${last.iou.toFixed(3)}</b></div>`,
        `<div class="kv">Decoder time for this box: <b id="sam-ms">${last.ms.toFixed(1)} ms</b> ` +
          '(prompt encoder + decoder + readback)</div>',
        `<div class="kv">Boxes so far: ${count}</div>`,
      ]
    : ['<div class="dim">No box yet.</div>'];
  $('result-side').innerHTML = [
    `<h3>Box prompt → mask</h3>${untrainedNote(untrained, 'the masks and IoUs')}`,
    `<div class="kv">Image embedding (backbone + neck, once per image): ${embedMs.toFixed(1)} ms</div>`,
    ...boxLines,
    `<div class="dim" style="margin-top:8px">SAM's prompt encoder and two-way mask decoder (single-mask output) ` +
      "over the frozen PVTv2 backbone with SAM's neck, as stage 4 runs them.</div>",
  ].join('\n');
}

const sigmoidAll = (a: Float32Array) => a.map((v) => 1 / (1 + Math.exp(-v)));

/**
 * Box entry: pointer drags on the view canvas (the rectangle follows the pointer; release
 * submits) and the numeric fields + button (Enter in a field submits too). `redraw` repaints the
 * current result under the rubber band; `image` gives the shown image's size (null: no image).
 */
export function wireBoxPrompt(
  image: () => { width: number; height: number } | null,
  redraw: () => void,
  submit: (box: number[]) => void,
): void {
  const canvas = $<HTMLCanvasElement>('view');
  let start: [number, number] | null = null;
  const toImage = (e: PointerEvent): [number, number] => {
    const img = image()!,
      r = canvas.getBoundingClientRect();
    const x = Math.min(Math.max(e.clientX - r.left, 0), r.width),
      y = Math.min(Math.max(e.clientY - r.top, 0), r.height);
    return [(x * img.width) / r.width, (y * img.height) / r.height];
  };
  const band = (a: [number, number], b: [number, number]): Box => [
    Math.min(a[0], b[0]),
    Math.min(a[1], b[1]),
    Math.max(a[0], b[0]),
    Math.max(a[1], b[1]),
  ];
  canvas.addEventListener('pointerdown', (e) => {
    if (!image() || $('box-controls').hidden) return;
    start = toImage(e);
    canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!start) return;
    redraw();
    strokeBox(band(start, toImage(e)), image()!, '#ffec3d', true);
  });
  canvas.addEventListener('pointerup', (e) => {
    if (!start) return;
    const box = band(start, toImage(e)).map(Math.round);
    start = null;
    ['box-x0', 'box-y0', 'box-x1', 'box-y1'].forEach((id, i) => {
      $<HTMLInputElement>(id).value = String(box[i]);
    });
    submit(box);
  });
  const fromFields = () =>
    submit(['box-x0', 'box-y0', 'box-x1', 'box-y1'].map((id) => Number($<HTMLInputElement>(id).value)));
  $('box-run').onclick = fromFields;
  for (const id of ['box-x0', 'box-y0', 'box-x1', 'box-y1'])
    $<HTMLInputElement>(id).onkeydown = (e) => {
      if (e.key === 'Enter') fromFields();
    };
}
