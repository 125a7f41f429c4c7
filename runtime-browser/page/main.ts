// The in-browser page: acquires WebGPU, runs the self-check, then loads a safetensors checkpoint
// (served URL or local file, with a progress bar) and runs it on an image (a bundled sample,
// a picked or dropped file): EVA-02 -> class probabilities and a class-activation map,
// Polyp-PVT -> a polyp mask, ToCo -> a CAM heat map and EndoKED's box, the SAM-style decoder ->
// a mask per box the user drags or types (endoked.ts, endoked-ui.ts). Everything it computes goes through the same engine, shaders,
// preprocessing (preprocess.ts) and model code (infer.ts) as Node. `globalThis.__page` mirrors
// the page's state for the browser tests.
import { initBrowser } from '../index.ts';
import { selfCheck } from './selfcheck.ts';
import { preprocess, rgbChecksum, type RgbaImage } from './preprocess.ts';
import { device, type Tensor } from '../../engine/index.ts';
import { camAndBox, samEmbed, samDecodeBox, normaliseBox, isUntrained, CAM_THRESHOLD, type CamBox, type BoxMask } from './endoked.ts';
import { renderCam, renderSam, wireBoxPrompt } from './endoked-ui.ts';
import { loadCheckpoint, classify, segment, type LoadedModel, type ModelKind, type StageTimes, type Classification, type Segmentation } from './infer.ts';
import { $, showError, fmtBytes, fillTimings, modelSummary, renderClassification, renderSegmentation } from './render.ts';

type Result =
  | { kind: 'eva02'; probs: number[]; cam: number[]; grid: [number, number]; top: { index: number; name: string; p: number }[] }
  | { kind: 'polyp-pvt'; prob: number[]; size: [number, number]; maskArea: number }
  | { kind: 'toco-cam'; cam: number[]; size: [number, number]; prob: number; camBox: number[] | null; box: number[] | null; accepted: boolean; reason: string; untrained: boolean }
  | { kind: 'sam-box'; embedMs: number; untrained: boolean; boxes: { box: number[]; logits: number[]; size: [number, number]; iou: number; ms: number }[] };

interface PageState {
  status: 'starting' | 'ready' | 'error'; error?: string; featureLevel?: string; adapter?: string; selfCheck?: number[];
  timings: Record<string, number>;
  /** Completed user actions (checkpoint loads, image picks), each with its inference run. */
  actions: number;
  busy: boolean;
  model: { kind: ModelKind; source: string; classes?: string[]; numParameters: number; inputSize: [number, number]; notes: string[] } | null;
  modelError: string | null;
  image: { name: string; width: number; height: number; checksum: string } | null;
  imageError: string | null;
  result: Result | null;
  resultError: string | null;
}
const state: PageState = {
  status: 'starting', timings: {}, actions: 0, busy: false, model: null, modelError: null, image: null, imageError: null, result: null, resultError: null,
};
(globalThis as unknown as { __page: PageState }).__page = state;

let model: LoadedModel | null = null;
let picture: { bitmap: ImageBitmap; pixels: RgbaImage } | null = null;
let lastRun: { kind: 'eva02'; r: Classification } | { kind: 'polyp-pvt'; r: Segmentation } | { kind: 'toco-cam'; r: CamBox }
  | { kind: 'sam-box'; embedding: Tensor; embedMs: number; last: BoxMask | null; count: number } | null = null;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const now = () => performance.now();

function timing(name: string, ms: number): void { state.timings[name] = ms; }

/** User actions run one at a time, in order. */
let queue: Promise<void> = Promise.resolve();
function act(fn: () => Promise<void>): void {
  queue = queue.then(async () => {
    state.busy = true;
    try {
      await fn();
    } catch (e) { // each action reports its own errors; this keeps an unexpected one visible
      state.resultError = message(e);
      showError('result-error', state.resultError);
    } finally { state.busy = false; state.actions++; }
  });
}

// ---- checkpoints ----------------------------------------------------------------------------------

/** Reads a byte stream to the end, reporting progress (total 0: unknown length). */
async function readAll(stream: ReadableStream<Uint8Array>, total: number, onProgress: (got: number) => void): Promise<Uint8Array> {
  const reader = stream.getReader(), chunks: Uint8Array[] = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onProgress(got);
  }
  if (total && got !== total) throw new Error(`the download stopped at ${got} of ${total} bytes`);
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

function progress(got: number, total: number, what: string): void {
  const bar = $<HTMLProgressElement>('ckpt-progress');
  if (total) bar.value = got / total; else bar.removeAttribute('value');
  $('ckpt-progress-text').textContent = `${what}: ${fmtBytes(got)}${total ? ` of ${fmtBytes(total)}` : ''}`;
}

async function openCheckpoint(source: string, open: () => Promise<{ stream: ReadableStream<Uint8Array>; total: number }>): Promise<void> {
  model?.model.dispose();
  model = null;
  state.model = null;
  state.modelError = null;
  showError('model-error', null);
  $('model-info').innerHTML = '';
  clearResult();
  try {
    const t0 = now();
    const { stream, total } = await open();
    const bytes = await readAll(stream, total, (got) => progress(got, total, `Reading ${source}`));
    const t1 = now();
    $('ckpt-progress-text').textContent = `Building the model and uploading ${fmtBytes(bytes.length)} of weights…`;
    const kind = $<HTMLSelectElement>('model-kind').value as ModelKind | 'auto';
    model = loadCheckpoint(bytes, { kind, source });
    await device().sync(); // the weight uploads and copies
    const t2 = now();
    fillTimings('timings-load', [['download / read', t1 - t0], ['build + upload weights', t2 - t1]]);
    timing('checkpoint read', t1 - t0);
    timing('checkpoint load', t2 - t1);
    state.model = {
      kind: model.kind, source, classes: model.kind === 'eva02' ? model.classes : undefined,
      numParameters: model.numParameters, inputSize: model.inputSize, notes: model.notes,
    };
    $('ckpt-progress-text').textContent = `Loaded ${source} (${fmtBytes(bytes.length)}).`;
    $('model-info').innerHTML = modelSummary(model, source);
  } catch (e) {
    model = null;
    state.modelError = message(e);
    $('ckpt-progress-text').textContent = `Could not load ${source}.`;
    showError('model-error', state.modelError);
    return;
  }
  if (picture) await run();
}

function loadUrl(url: string): void {
  if (!url) return;
  act(() => openCheckpoint(url, async () => {
    const res = await fetch(url);
    if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
    return { stream: res.body, total: Number(res.headers.get('content-length')) || 0 };
  }));
}

function loadFile(file: File): void {
  act(() => openCheckpoint(file.name, async () => ({ stream: file.stream() as ReadableStream<Uint8Array>, total: file.size })));
}

// ---- images and inference -----------------------------------------------------------------------------

async function decode(blob: Blob): Promise<{ bitmap: ImageBitmap; pixels: RgbaImage }> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  const d = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { bitmap, pixels: { width: d.width, height: d.height, data: d.data } };
}

function openImage(name: string, getBlob: () => Promise<Blob>): void {
  act(async () => {
    state.imageError = null;
    showError('image-error', null);
    try {
      const t0 = now();
      const decoded = await decode(await getBlob());
      timing('decode', now() - t0);
      picture?.bitmap.close();
      picture = decoded;
      state.image = { name, width: decoded.pixels.width, height: decoded.pixels.height, checksum: rgbChecksum(decoded.pixels) };
      $('image-info').textContent = `Image: ${name} (${decoded.pixels.width}×${decoded.pixels.height})`;
    } catch (e) {
      state.imageError = `${name}: cannot decode this image (${message(e)})`;
      showError('image-error', state.imageError);
      return;
    }
    if (model) await run();
    else clearResult();
  });
}

function clearResult(): void {
  state.result = null;
  if (lastRun?.kind === 'sam-box') lastRun.embedding.dispose();
  lastRun = null;
  $('box-controls').hidden = true;
  $('view').classList.remove('prompt');
  $('result-body').hidden = true;
  $('result-empty').hidden = false;
}

async function run(): Promise<void> {
  if (!model || !picture) return;
  if (lastRun?.kind === 'sam-box') lastRun.embedding.dispose();
  lastRun = null;
  state.resultError = null;
  showError('result-error', null);
  try {
    const [h, w] = model.inputSize;
    const t0 = now();
    const { input } = preprocess(picture.pixels, w, h, model.norm);
    const tPre = now() - t0;
    let times: StageTimes;
    const untrained = isUntrained(model.metadata);
    if (model.kind === 'toco-cam') {
      const r = await camAndBox(model.model, input, picture.pixels.width, picture.pixels.height);
      times = r.times;
      timing('box rule', r.times.boxRule);
      renderCam(r, picture.bitmap, overlayOn(), CAM_THRESHOLD, untrained);
      const d = r.decision;
      state.result = { kind: 'toco-cam', cam: [...r.cam], size: r.size, prob: r.prob, camBox: d.box, box: r.box, accepted: d.accepted, reason: d.reason, untrained };
      lastRun = { kind: 'toco-cam', r };
    } else if (model.kind === 'sam-box') {
      const { embedding, ms } = await samEmbed(model.model, input);
      // One throw-away box (the whole image): the first decoder run compiles its pipelines, which
      // would otherwise land on the user's first box.
      const warm = await samDecodeBox(model.model, embedding, [0, 0, picture.pixels.width, picture.pixels.height], picture.pixels.width, picture.pixels.height);
      timing('decoder warm-up', warm.ms);
      times = { upload: 0, forward: ms, readback: 0 };
      lastRun = { kind: 'sam-box', embedding, embedMs: ms, last: null, count: 0 };
      state.result = { kind: 'sam-box', embedMs: ms, untrained, boxes: [] };
      renderSam(picture.bitmap, null, overlayOn(), ms, untrained, 0);
      $('box-controls').hidden = false;
      $('view').classList.add('prompt');
    } else if (model.kind === 'eva02') {
      const m = model;
      const r = await classify(m, input);
      times = r.times;
      const { top } = renderClassification(m, r, picture.bitmap, overlayOn());
      state.result = { kind: 'eva02', probs: [...r.probs], cam: [...r.cam], grid: r.grid, top: top.map((i) => ({ index: i, name: m.classes[i], p: r.probs[i] })) };
      lastRun = { kind: 'eva02', r };
    } else {
      const r = await segment(model, input);
      times = r.times;
      const { area } = renderSegmentation(r, picture.bitmap, overlayOn());
      state.result = { kind: 'polyp-pvt', prob: [...r.prob], size: r.size, maskArea: area };
      lastRun = { kind: 'polyp-pvt', r };
    }
    const rows: [string, number][] = model.kind === 'sam-box'
      ? [['decode', state.timings.decode ?? 0], ['resize', tPre], ['image embedding (upload + backbone + neck)', times.forward], ['decoder warm-up (first run)', state.timings['decoder warm-up']]]
      : [['decode', state.timings.decode ?? 0], ['resize + normalise', tPre], ['upload', times.upload], ['forward', times.forward], ['readback', times.readback]];
    for (const [k, v] of rows) timing(k, v);
    fillTimings('timings-run', rows);
    $('result-empty').hidden = true;
    $('result-body').hidden = false;
  } catch (e) {
    state.resultError = message(e);
    showError('result-error', state.resultError);
  }
}

const overlayOn = () => $<HTMLInputElement>('show-overlay').checked;

/** One box prompt (image pixels) through the decoder over the cached embedding. */
function segmentBox(raw: number[]): void {
  act(async () => {
    if (!model || model.kind !== 'sam-box' || !picture || lastRun?.kind !== 'sam-box' || state.result?.kind !== 'sam-box') return;
    state.resultError = null;
    showError('result-error', null);
    const box = normaliseBox(raw, picture.pixels.width, picture.pixels.height);
    if (!box) {
      state.resultError = `The box [${raw.join(', ')}] is empty or outside the ${picture.pixels.width}×${picture.pixels.height} image.`;
      showError('result-error', state.resultError);
      return;
    }
    const r = await samDecodeBox(model.model, lastRun.embedding, box, picture.pixels.width, picture.pixels.height);
    lastRun.last = r;
    lastRun.count++;
    state.result.boxes.push({ box: [...r.box], logits: [...r.logits], size: r.size, iou: r.iou, ms: r.ms });
    timing('decoder (last box)', r.ms);
    fillTimings('timings-run', [['image embedding (upload + backbone + neck)', lastRun.embedMs], ['decoder, last box (prompt + decoder + readback)', r.ms]]);
    renderSam(picture.bitmap, r, overlayOn(), lastRun.embedMs, state.result.untrained, lastRun.count);
  });
}

function redraw(): void {
  if (!model || !picture || !lastRun) return;
  if (lastRun.kind === 'toco-cam') renderCam(lastRun.r, picture.bitmap, overlayOn(), CAM_THRESHOLD, isUntrained(model.metadata));
  else if (lastRun.kind === 'sam-box') renderSam(picture.bitmap, lastRun.last, overlayOn(), lastRun.embedMs, isUntrained(model.metadata), lastRun.count);
  else if (model.kind === 'eva02' && lastRun.kind === 'eva02') renderClassification(model, lastRun.r, picture.bitmap, overlayOn());
  else if (lastRun.kind === 'polyp-pvt') renderSegmentation(lastRun.r, picture.bitmap, overlayOn());
}

// ---- wiring ---------------------------------------------------------------------------------------------

const markSample = (b: HTMLElement | null) => $('samples').querySelectorAll('button').forEach((o) => o.classList.toggle('on', o === b));

async function listSamples(): Promise<void> {
  const res = await fetch('samples/index.json');
  if (!res.ok) return;
  const samples = (await res.json()) as { file: string; title: string }[];
  const box = $('samples');
  for (const s of samples) {
    const b = document.createElement('button');
    b.title = s.title;
    b.innerHTML = `<img src="samples/${s.file}" alt="${s.title}">`;
    b.onclick = () => {
      markSample(b);
      openImage(s.title, async () => {
        const r = await fetch(`samples/${s.file}`);
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return r.blob();
      });
    };
    box.appendChild(b);
  }
}

async function listCheckpoints(): Promise<void> {
  const res = await fetch('checkpoints.json').catch(() => null);
  if (!res?.ok) return;
  const list = (await res.json()) as { url: string; bytes: number }[];
  if (!list.length) return;
  $('ckpt-hint').hidden = true;
  const sel = $<HTMLSelectElement>('ckpt-list');
  sel.innerHTML = `<option value="">choose a checkpoint…</option>` + list.map((c) => `<option value="${c.url}">${c.url} (${fmtBytes(c.bytes)})</option>`).join('');
  sel.onchange = () => { $<HTMLInputElement>('ckpt-url').value = sel.value; loadUrl(sel.value); };
}

function wire(): void {
  $('ckpt-load').onclick = () => loadUrl($<HTMLInputElement>('ckpt-url').value.trim());
  $<HTMLInputElement>('ckpt-url').onkeydown = (e) => { if (e.key === 'Enter') loadUrl($<HTMLInputElement>('ckpt-url').value.trim()); };
  $<HTMLInputElement>('ckpt-file').onchange = (e) => {
    const input = e.target as HTMLInputElement, f = input.files?.[0];
    input.value = ''; // the summary names the file; the same file can be picked again
    if (f) loadFile(f);
  };
  $<HTMLInputElement>('image-file').onchange = (e) => {
    const input = e.target as HTMLInputElement, f = input.files?.[0];
    input.value = '';
    markSample(null);
    if (f) openImage(f.name, async () => f);
  };
  $('show-overlay').onchange = redraw;
  wireBoxPrompt(() => (lastRun?.kind === 'sam-box' && picture ? picture.pixels : null), redraw, segmentBox);
  const drop = $('drop');
  document.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  document.addEventListener('dragleave', () => drop.classList.remove('over'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (!f || state.status !== 'ready') return;
    if (f.name.endsWith('.safetensors')) loadFile(f);
    else {
      markSample(null);
      openImage(f.name, async () => f);
    }
  });
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const t0 = now();
  const { device, featureLevel, adapterName } = await initBrowser({ featureLevel: params.get('featureLevel') === 'compatibility' ? 'compatibility' : 'core' });
  timing('acquire device', now() - t0);
  state.featureLevel = featureLevel;
  state.adapter = adapterName;
  $('device').textContent = `${adapterName} — ${featureLevel} feature level${device.hasF16 ? ', shader-f16' : ''}`;
  const t1 = now();
  state.selfCheck = await selfCheck();
  timing('self-check', now() - t1);
  $('selfcheck').textContent = `Self-check (MLP + softmax, ${state.selfCheck.length} outputs) ok in ${(now() - t1).toFixed(0)} ms; device acquired in ${state.timings['acquire device'].toFixed(0)} ms.`;
  wire();
  await Promise.all([listSamples(), listCheckpoints()]);
  for (const id of ['model-controls', 'image-controls']) ($(id) as HTMLFieldSetElement).disabled = false;
  state.status = 'ready';
  $('status').textContent = 'ready';
}

main().catch((e: unknown) => {
  state.status = 'error';
  state.error = message(e);
  const s = $('status');
  s.className = 'error';
  s.textContent = state.error;
  $('result-empty').textContent = 'The models run on WebGPU, which this page could not use (see the message at the top).';
});
