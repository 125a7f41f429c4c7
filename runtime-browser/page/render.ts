// DOM rendering for the page: the image with its overlay, the top-k bars, the mask summary, the
// model summary and the timing tables. Everything here only draws; its callers decide what to draw.
import { heatColor, heatLayer, maskLayer, column, topK } from './overlay.ts';
import { MODEL_NAMES, type Classification, type LoadedModel, type Segmentation } from './infer.ts';
import type { ModelCard } from './catalog.ts';

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Shows an error box: the first line as its summary, the rest (e.g. key lists) scrollable below. */
export function showError(id: string, message: string | null): void {
  const el = $(id);
  el.hidden = !message;
  el.replaceChildren();
  if (!message) return;
  const [first, ...rest] = message.split('\n');
  const head = document.createElement('div');
  head.className = 'summary';
  head.textContent = first;
  el.appendChild(head);
  if (rest.length) {
    const details = document.createElement('pre');
    details.textContent = rest.join('\n');
    el.appendChild(details);
  }
}

export function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} KB`;
}

export function fillTimings(id: string, rows: [string, number][]): void {
  $('timings').hidden = false;
  $(id).innerHTML = rows.map(([k, ms]) => `<tr><td>${esc(k)}</td><td>${ms.toFixed(1)} ms</td></tr>`).join('');
}

/** The warning every untrained model's summary and result carry. */
export const untrainedBadge = (what: string) =>
  `<div class="untrained" role="note"><b>Untrained</b> (random weights): ${what} mean nothing.</div>`;

export function modelSummary(m: LoadedModel, source: string, untrained: boolean): string {
  const [h, w] = m.inputSize;
  const what =
    m.kind === 'eva02'
      ? `${m.config.numClasses} classes, ${m.config.embedDim}-d, depth ${m.config.depth}, patch ${m.config.patchSize}`
      : m.kind === 'polyp-pvt'
        ? `PVTv2 dims ${m.config.backbone.embedDims.join('/')}, decoder ${m.config.channel} channels`
        : m.kind === 'toco-cam'
          ? `EVA-02 trunk ${m.config.backbone.embedDim}-d, depth ${m.config.backbone.depth}, patch ` +
            `${m.config.backbone.patchSize}; aux classifier at block ${m.config.auxLayer}`
          : `frozen PVTv2-µ + SAM's neck; decoder ${m.config.embedDim}-d, ${m.config.numHeads} heads, ` +
            `depth ${m.config.depth}; embedding ${m.config.imageEmbeddingSize.join('×')}`;
  const notes = m.notes.length ? `<ul class="notes">${m.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '';
  const params = `${(m.numParameters / 1e6).toFixed(2)}M parameters`;
  const norm = m.norm === 'imagenet' ? '(ImageNet mean/std)' : '(RGB in [0, 1])';
  return (
    `<div class="kv"><b>${MODEL_NAMES[m.kind]}</b> · ${params} · input ${h}×${w}\n    ${norm}</div>` +
    `<div class="dim">${esc(what)} · ${esc(source)}</div>${notes}` +
    (untrained ? untrainedBadge('its outputs') : '')
  );
}

/** A model card: what it was trained on, the command that reproduces it, its test scores. */
export function cardHtml(c: ModelCard, open: boolean): string {
  const scores = Object.entries(c.scores)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.toFixed(3)}</td></tr>`)
    .join('');
  return `<details class="card" id="model-card"${open ? ' open' : ''}><summary>Model card: ${esc(c.title)}</summary>
    <div class="kv">${esc(c.task)}; trained on ${esc(c.trainedOn)}</div>
    <table>${scores}</table><div class="dim">${esc(c.scoresOn)}</div>
    <div class="kv">Reproduce (from the repository root):</div><pre class="cmd">${esc(c.command)}</pre>
    <div class="dim">${fmtBytes(c.bytes)} · sha256 ${esc(c.sha256.slice(0, 12))}… · ${esc(c.date)}</div>
    ${c.notes?.length ? `<ul class="notes">${c.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}</details>`;
}

/** The user's display settings: the mask threshold, the overlay's opacity, the CAM's class (-1: the top one). */
export const view = { threshold: 0.5, opacity: 1, camClass: -1 };

/** Size of the view for an image: fits 360 x 360, keeps the aspect ratio. */
export function viewSize(w: number, h: number, box = 360): [number, number] {
  const s = Math.min(box / w, box / h);
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

/** Draws the image, then (if given) an RGBA layer of the same size over it. */
export function drawView(img: ImageBitmap, layer: Uint8ClampedArray | null): void {
  const canvas = $<HTMLCanvasElement>('view');
  const [w, h] = viewSize(img.width, img.height);
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, 0, 0, w, h);
  if (!layer) return;
  const tmp = new OffscreenCanvas(w, h);
  tmp.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(layer), w, h), 0, 0);
  ctx.globalAlpha = view.opacity;
  ctx.drawImage(tmp, 0, 0);
  ctx.globalAlpha = 1;
}

const legend = () =>
  `linear-gradient(to right, ` +
  `${[0, 0.2, 0.4, 0.6, 0.8, 1].map((t) => `rgb(${heatColor(t).map(Math.round).join(',')}) ${t * 100}%`).join(', ')})`;

/** The classifier's result: top-k bars and the CAM layer of the chosen class (the top one unless chosen). */
export function renderClassification(
  m: Extract<LoadedModel, { kind: 'eva02' }>,
  r: Classification,
  img: ImageBitmap,
  overlay: boolean,
  untrained: boolean,
): { top: number[] } {
  const top = topK(r.probs, Math.min(5, r.probs.length));
  const [gh, gw] = r.grid,
    [w, h] = viewSize(img.width, img.height);
  const c = view.camClass >= 0 && view.camClass < m.config.numClasses ? view.camClass : top[0];
  const cam = column(r.cam, m.config.numClasses, c);
  drawView(img, overlay ? heatLayer(cam, gh, gw, w, h) : null);
  $('caption').textContent = `class activation of “${m.classes[c]}” on the ${gh}×${gw} patch grid`;
  const bars = top
    .map(
      (k) =>
        `<div class="name${k === c ? ' first' : ''}">${esc(m.classes[k])}</div>\n` +
        `<div class="track${k === c ? ' first' : ''}">` +
        `<div class="fill" style="width:${(100 * r.probs[k]).toFixed(1)}%"></div></div>\n` +
        `<div class="pct">${(100 * r.probs[k]).toFixed(1)}%</div>`,
    )
    .join('');
  const options = m.classes
    .map(
      (n, k) => `<option value="${k}"${k === c ? ' selected' : ''}>${esc(n)}${k === top[0] ? ' (top)' : ''}</option>`,
    )
    .join('');
  $('result-side').innerHTML = [
    (untrained ? untrainedBadge('these probabilities and the map') : '') +
      `<h3>Top ${top.length} of ${r.probs.length} classes (softmax)</h3><div class="bars">${bars}</div>`,
    '<h3 style="margin-top:14px">Class-activation map</h3>',
    `<div class="row"><label for="cam-class">Class</label><select id="cam-class">${options}</select></div>`,
    '<div class="dim">Each patch token through the mean-pool head alone, head(fc_norm(token)), for the chosen ' +
      "class; exact CAM up to fc_norm's per-token normalisation.</div>",
    `<div class="legend" style="background:${legend()}"></div>` +
      '<div class="legend-labels dim"><span>low</span><span>high</span></div>',
  ].join('\n');
  return { top };
}

/** The segmenter's result: mask layer (tint + contour) and its summary. */
export function renderSegmentation(
  r: Segmentation,
  img: ImageBitmap,
  overlay: boolean,
  untrained: boolean,
): { area: number } {
  const [w, h] = viewSize(img.width, img.height),
    [sh, sw] = r.size;
  const { rgba, area } = maskLayer(r.prob, sh, sw, w, h, view.threshold);
  drawView(img, overlay ? rgba : null);
  let maxP = 0;
  for (const p of r.prob) maxP = Math.max(maxP, p);
  $('caption').textContent = `sigmoid(P1 + P2) > ${view.threshold.toFixed(2)}, upsampled from ${sh}×${sw}`;
  $('result-side').innerHTML = [
    `${untrained ? untrainedBadge('this mask') : ''}<h3>Polyp mask</h3>`,
    `<div class="kv">Mask area: <b>${(100 * area).toFixed(1)}%</b> of the image</div>`,
    `<div class="kv">Highest pixel probability: ${maxP.toFixed(3)}</div>`,
    '<div class="kv"><span class="swatch" style="background:rgba(0,214,170,.6)"></span>mask ' +
      '<span class="swatch" style="background:#ffec3d;margin-left:10px"></span>contour</div>',
    `<div class="dim" style="margin-top:8px">Polyp-PVT's two outputs (the CFM and SAM heads, each upsampled ×8) ` +
      "are summed as logits, as the reference's test script does.",
    'For box-prompted masks load a SAM box-prompt checkpoint.</div>',
  ].join('\n');
  return { area };
}
