// The in-browser page: acquires WebGPU (the faster adapter, measured once: ../index.ts), runs the
// self-check, lists the served checkpoints (catalog.ts: trained ones with their model cards first,
// untrained ones labelled) and opens the default one on the matching sample, then loads any
// checkpoint (served URL or local file, with a progress bar) and runs it on an image (a bundled
// sample, a picked or dropped file): EVA-02 -> class probabilities and a class-activation map,
// Polyp-PVT -> a polyp mask, ToCo -> a CAM heat map and EndoKED's box, the SAM-style decoder ->
// a mask per box the user drags or types (endoked.ts, endoked-ui.ts). Requests run one at a time
// and the newest wins (requests.ts); a checkpoint that fails to load leaves the working one in
// place; a result, its timings and its errors belong to the image they were computed for and are
// cleared as soon as another image is asked for. Everything it computes goes through the same
// engine, shaders, preprocessing (preprocess.ts) and model code (infer.ts) as Node.
// `globalThis.__page` mirrors the page's state for the browser tests.
import { initBrowser } from '../index.ts';
import { selfCheck } from './selfcheck.ts';
import { preprocess, rgbChecksum, type RgbaImage } from './preprocess.ts';
import { device, setFlags, flagsFromQuery, type Tensor } from '../../engine/index.ts';
import {
  camAndBox,
  samEmbed,
  samDecodeBox,
  normaliseBox,
  isUntrained,
  CAM_THRESHOLD,
  type CamBox,
  type BoxMask,
} from './endoked.ts';
import { renderCam, renderSam, wireBoxPrompt } from './endoked-ui.ts';
import {
  loadCheckpoint,
  warmupModel,
  classify,
  segment,
  type LoadedModel,
  type StageTimes,
  type Classification,
  type Segmentation,
} from './infer.ts';
import {
  $,
  showError,
  fmtBytes,
  fillTimings,
  modelSummary,
  cardHtml,
  renderClassification,
  renderSegmentation,
  view,
} from './render.ts';
import { wireOutputs } from './outputs.ts';
import { readAll, progress, decode } from './load-io.ts';
import { runBatch, renderBatch, wireBatchCsv, type BatchState } from './batch.ts';
import { cameraLoop, type CameraState } from './camera.ts';
import { showDomain, showScore, resultNumbers } from './result-extras.ts';
import { Requests } from './requests.ts';
import { entryLabel, type CatalogEntry } from './catalog.ts';
import { showDevice, wireAdapterControl, adapterPreference } from './device-ui.ts';
import { state } from './state.ts';

let model: LoadedModel | null = null;
let picture: { bitmap: ImageBitmap; pixels: RgbaImage; name: string; checksum: string; decodeMs: number } | null = null;
let lastRun:
  | { kind: 'eva02'; r: Classification }
  | { kind: 'polyp-pvt'; r: Segmentation }
  | { kind: 'toco-cam'; r: CamBox }
  | { kind: 'sam-box'; embedding: Tensor; embedMs: number; last: BoxMask | null; count: number }
  | null = null;
let catalog: CatalogEntry[] = [];
/** A ground-truth mask for the shown image (cleared with its result). */
let truth: { name: string; pixels: RgbaImage } | null = null;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const now = () => performance.now();
function timing(name: string, ms: number): void {
  state.timings[name] = ms;
}

// Requests run one at a time, the newest winning (requests.ts). Every request settles exactly
// once (done, failed or superseded) and `actions` counts them, so a test can wait for all it made.
const requests = new Requests({
  busy(what) {
    state.busy = what !== null;
    state.busyWhat = what;
    $('busy').hidden = !what;
    $('busy-text').textContent = what ?? '';
    $('result').classList.toggle('busy', !!what);
    $('result').setAttribute('aria-busy', String(!!what));
  },
  settled(outcome, job, e) {
    state.actions++;
    state.outcomes[outcome]++;
    if (outcome === 'failed') {
      // each job reports its own errors; this keeps an unexpected one visible
      state.resultError = `${job.what}: ${message(e)}`;
      showError('result-error', state.resultError);
    }
  },
});
class Superseded extends Error {}
/** Stops a job whose result a newer request has made stale (requests.ts counts it superseded). */
const still = (current: () => boolean) => {
  if (!current()) throw new Superseded('superseded by a newer request');
};

// ---- checkpoints ----------------------------------------------------------------------------------

/**
 * Loads a checkpoint beside the current model and swaps only when it works: a download, a parse
 * or a weight mismatch that fails leaves the working model, its result and its timings in place.
 */
async function openCheckpoint(
  source: string,
  open: () => Promise<{ stream: ReadableStream<Uint8Array>; total: number }>,
  current: () => boolean,
): Promise<void> {
  state.modelError = null;
  showError('model-error', null);
  let next: LoadedModel | null = null;
  try {
    const t0 = now();
    const { stream, total } = await open();
    const bytes = await readAll(stream, total, (got) => progress(got, total, `Reading ${source}`));
    still(current);
    const t1 = now();
    $('ckpt-progress-text').textContent = `Building the model and uploading ${fmtBytes(bytes.length)} of weights…`;
    const kind = $<HTMLSelectElement>('model-kind').value as LoadedModel['kind'] | 'auto';
    next = loadCheckpoint(bytes, { kind, source });
    await device().sync(); // the weight uploads and copies
    await warmupModel(next); // compile the forward's pipelines now, off the first image's path
    still(current);
    const t2 = now();
    model?.model.dispose();
    model = next;
    next = null;
    clearResult('');
    const entry = catalog.find((c) => c.url === source);
    const untrained = isUntrained(model.metadata);
    fillTimings('timings-load', [
      ['download / read', t1 - t0],
      ['build + upload weights', t2 - t1],
    ]);
    timing('checkpoint read', t1 - t0);
    timing('checkpoint load', t2 - t1);
    state.model = {
      kind: model.kind,
      source,
      classes: model.kind === 'eva02' ? model.classes : undefined,
      untrained,
      card: entry?.card ?? null,
      numParameters: model.numParameters,
      inputSize: model.inputSize,
      notes: model.notes,
    };
    $('ckpt-progress-text').textContent = `Loaded ${source} (${fmtBytes(bytes.length)}).`;
    $('model-info').innerHTML =
      modelSummary(model, source, untrained) +
      (entry?.card ? cardHtml(entry.card, !matchMedia('(max-width: 900px)').matches) : '');
  } catch (e) {
    next?.model.dispose();
    if (e instanceof Superseded) throw e;
    state.modelError = message(e);
    $('ckpt-progress-text').textContent = model
      ? `Could not load ${source}; still using ${state.model?.source}.`
      : `Could not load ${source}.`;
    showError('model-error', state.modelError);
    return;
  }
  // A waiting image request runs through the new model itself.
  if (picture && !requests.pending('image')) await run(current);
}

function loadUrl(url: string): void {
  if (!url) return;
  requests.submit({
    lane: 'model',
    what: `Loading ${url}`,
    run: (current) =>
      openCheckpoint(
        url,
        async () => {
          const res = await fetch(url);
          if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
          return { stream: res.body, total: Number(res.headers.get('content-length')) || 0 };
        },
        current,
      ),
  });
}

function loadFile(file: File): void {
  requests.submit({
    lane: 'model',
    what: `Loading ${file.name}`,
    run: (current) =>
      openCheckpoint(
        file.name,
        async () => ({ stream: file.stream() as ReadableStream<Uint8Array>, total: file.size }),
        current,
      ),
  });
}

// ---- images and inference -----------------------------------------------------------------------------

/** A new image: the old result, its timings and errors go at once; then decode and run. */
function openImage(name: string, getBlob: () => Promise<Blob>): void {
  state.imageError = null;
  showError('image-error', null);
  state.image = null;
  $('image-info').textContent = `Image: ${name} (decoding…)`;
  clearResult(model ? `Running ${state.model?.source} on ${name}…` : `${name}: load a checkpoint to run it.`);
  requests.submit({
    lane: 'image',
    what: `${model ? 'Running on' : 'Decoding'} ${name}`,
    run: async (current) => {
      let decoded: Awaited<ReturnType<typeof decode>>;
      const t0 = now();
      try {
        decoded = await decode(await getBlob());
      } catch (e) {
        still(current);
        state.imageError = `${name}: cannot decode this image (${message(e)})`;
        showError('image-error', state.imageError);
        $('image-info').textContent = `Image: ${name} (not decoded)`;
        clearResult('');
        picture?.bitmap.close();
        picture = null;
        return;
      }
      if (!current()) {
        decoded.bitmap.close();
        still(current);
      }
      picture?.bitmap.close();
      picture = { ...decoded, name, checksum: rgbChecksum(decoded.pixels), decodeMs: now() - t0 };
      state.image = { name, width: decoded.pixels.width, height: decoded.pixels.height, checksum: picture.checksum };
      $('image-info').textContent = `Image: ${name} (${decoded.pixels.width}×${decoded.pixels.height})`;
      // A waiting checkpoint runs this image itself once it is loaded.
      if (model && !requests.pending('model')) await run(current);
    },
  });
}

/** Several images (files or a folder) through the loaded model, into the batch table. */
function openBatch(files: File[]): void {
  if (!files.length) return;
  requests.submit({
    lane: 'image',
    what: `Batch of ${files.length} image${files.length > 1 ? 's' : ''}`,
    run: async (current) => {
      if (!model) throw new Error('load a classifier or segmenter checkpoint first');
      const b: BatchState = { model: state.model!.source, total: files.length, rows: [], stopped: false };
      state.batch = b;
      renderBatch(b);
      const finished = await runBatch(model, files, view.threshold, state.model?.card?.inputStats, current, (row) => {
        b.rows.push(row);
        renderBatch(b);
      });
      if (!finished) {
        b.stopped = true;
        renderBatch(b);
        still(current);
      }
    },
  });
}

let cameraWanted = false;

/** The camera loop (camera.ts): one request that runs frame after frame until stopped or superseded. */
function toggleCamera(): void {
  if (state.camera?.running) {
    cameraWanted = false;
    return;
  }
  cameraWanted = true;
  markSample(null);
  clearResult('Opening the camera…');
  requests.submit({
    lane: 'image',
    what: 'Camera',
    run: async (current) => {
      if (model?.kind !== 'eva02' && model?.kind !== 'polyp-pvt')
        throw new Error('camera mode runs a loaded EVA-02 classifier or Polyp-PVT segmenter');
      const cam: CameraState = { running: true, frames: 0, fps: 0, width: 0, height: 0, error: null };
      state.camera = cam;
      $('camera-toggle').textContent = 'Stop camera';
      try {
        await cameraLoop(
          $<HTMLVideoElement>('camera-video'),
          cam,
          () => current() && cameraWanted,
          async (frame) => {
            picture?.bitmap.close();
            picture = { ...frame, name: `camera frame ${cam.frames}`, checksum: '', decodeMs: 0 };
            state.image = { name: picture.name, width: frame.pixels.width, height: frame.pixels.height, checksum: '' };
            await run(current, true);
          },
        );
      } catch (e) {
        if (!(e instanceof Superseded)) cam.error = message(e);
        throw e;
      } finally {
        cam.running = false;
        $('camera-toggle').textContent = 'Camera';
      }
    },
  });
}

/** Empties the result panel and the per-image timings, with `note` in their place. */
function clearResult(note: string): void {
  state.result = null;
  state.resultError = null;
  showError('result-error', null);
  if (lastRun?.kind === 'sam-box') lastRun.embedding.dispose();
  lastRun = null;
  $('box-controls').hidden = true;
  $('result-tools').hidden = true;
  $('ood-hint').hidden = true;
  view.camClass = -1; // a new result shows its own top class's map first
  state.domain = null;
  truth = null;
  state.truth = null;
  $('gt-score').textContent = '';
  $('view').classList.remove('prompt');
  $('result-body').hidden = true;
  $('result-empty').hidden = false;
  $('result-empty').textContent = note || EMPTY_TEXT;
  $('timings-run').innerHTML = '';
  $('timings-run-title').textContent = 'Image';
  for (const k of [
    'decode',
    'resize',
    'resize + normalise',
    'upload',
    'forward',
    'readback',
    'box rule',
    'decoder warm-up',
    'decoder (last box)',
    'image embedding (upload + backbone + neck)',
    'decoder warm-up (first run)',
  ])
    delete state.timings[k];
}
let EMPTY_TEXT = '';

/**
 * Runs the model on the current picture and shows the result; `live` (camera frames) keeps the last one up meanwhile.
 */
async function run(current: () => boolean, live = false): Promise<void> {
  if (!model || !picture) return;
  const m = model,
    pic = picture;
  if (!live) clearResult(`Running ${state.model?.source} on ${pic.name}…`);
  const [h, w] = m.inputSize;
  const t0 = now();
  const { input } = preprocess(pic.pixels, w, h, m.norm);
  const tPre = now() - t0;
  let times: StageTimes;
  const untrained = isUntrained(m.metadata);
  const forImage = { image: pic.name, checksum: pic.checksum, model: state.model!.source };
  try {
    if (m.kind === 'toco-cam') {
      const r = await camAndBox(m.model, input, pic.pixels.width, pic.pixels.height);
      still(current);
      times = r.times;
      timing('box rule', r.times.boxRule);
      renderCam(r, pic.bitmap, overlayOn(), CAM_THRESHOLD, untrained);
      const d = r.decision;
      state.result = {
        kind: 'toco-cam',
        for: forImage,
        cam: [...r.cam],
        size: r.size,
        prob: r.prob,
        camBox: d.box,
        box: r.box,
        accepted: d.accepted,
        reason: d.reason,
        untrained,
      };
      lastRun = { kind: 'toco-cam', r };
    } else if (m.kind === 'sam-box') {
      const { embedding, ms } = await samEmbed(m.model, input);
      if (!current()) {
        embedding.dispose();
        still(current);
      }
      // One throw-away box (the whole image): the first decoder run compiles its pipelines, which
      // would otherwise land on the user's first box.
      const warm = await samDecodeBox(
        m.model,
        embedding,
        [0, 0, pic.pixels.width, pic.pixels.height],
        pic.pixels.width,
        pic.pixels.height,
      );
      timing('decoder warm-up', warm.ms);
      times = { upload: 0, forward: ms, readback: 0 };
      lastRun = { kind: 'sam-box', embedding, embedMs: ms, last: null, count: 0 };
      state.result = { kind: 'sam-box', for: forImage, embedMs: ms, untrained, boxes: [] };
      renderSam(pic.bitmap, null, overlayOn(), ms, untrained, 0);
      $('box-controls').hidden = false;
      $('view').classList.add('prompt');
    } else if (m.kind === 'eva02') {
      const r = await classify(m, input);
      still(current);
      times = r.times;
      const { top } = renderClassification(m, r, pic.bitmap, overlayOn(), untrained);
      state.result = {
        kind: 'eva02',
        for: forImage,
        probs: [...r.probs],
        cam: [...r.cam],
        grid: r.grid,
        top: top.map((i) => ({ index: i, name: m.classes[i], p: r.probs[i] })),
      };
      lastRun = { kind: 'eva02', r };
    } else {
      const r = await segment(m, input);
      still(current);
      times = r.times;
      const { area } = renderSegmentation(r, pic.bitmap, overlayOn(), untrained);
      state.result = { kind: 'polyp-pvt', for: forImage, prob: [...r.prob], size: r.size, maskArea: area };
      lastRun = { kind: 'polyp-pvt', r };
    }
  } catch (e) {
    if (e instanceof Superseded) throw e;
    state.resultError = `${pic.name}: ${message(e)}`;
    showError('result-error', state.resultError);
    return;
  }
  state.runs++;
  const rows: [string, number][] =
    m.kind === 'sam-box'
      ? [
          ['decode', pic.decodeMs],
          ['resize', tPre],
          ['image embedding (upload + backbone + neck)', times.forward],
          ['decoder warm-up (first run)', state.timings['decoder warm-up']],
        ]
      : [
          ['decode', pic.decodeMs],
          ['resize + normalise', tPre],
          ['upload', times.upload],
          ['forward', times.forward],
          ['readback', times.readback],
        ];
  for (const [k, v] of rows) timing(k, v);
  fillTimings('timings-run', rows);
  $('timings-run-title').textContent = `Image: ${pic.name}`;
  $('result-empty').hidden = true;
  $('result-body').hidden = false;
  $('result-tools').hidden = false;
  $('result-tools').classList.toggle('no-seg', m.kind !== 'polyp-pvt');
  state.domain = showDomain(
    pic.pixels,
    state.result?.kind === 'eva02' ? state.result.top[0].p : null,
    state.model?.card?.inputStats,
  );
}

/** Dice / IoU of the shown mask against the loaded ground truth, at the current threshold. */
function rescore(): void {
  if (!truth || lastRun?.kind !== 'polyp-pvt') return;
  state.truth = showScore(truth, lastRun.r, view.threshold);
}

async function openTruth(file: File): Promise<void> {
  const pic = picture;
  try {
    const { bitmap, pixels } = await decode(file);
    bitmap.close();
    if (pic !== picture) return; // another image came meanwhile: the mask was for the old one
    truth = { name: file.name, pixels };
    rescore();
  } catch (e) {
    $('gt-score').textContent = `${file.name}: cannot decode this mask (${message(e)})`;
  }
}

const overlayOn = () => $<HTMLInputElement>('show-overlay').checked;

/** One box prompt (image pixels) through the decoder over the cached embedding. */
function segmentBox(raw: number[]): void {
  requests.submit({
    lane: 'box',
    what: `Segmenting box [${raw.join(', ')}]`,
    run: async (current) => {
      if (
        !model ||
        model.kind !== 'sam-box' ||
        !picture ||
        lastRun?.kind !== 'sam-box' ||
        state.result?.kind !== 'sam-box'
      )
        return;
      state.resultError = null;
      showError('result-error', null);
      const box = normaliseBox(raw, picture.pixels.width, picture.pixels.height);
      if (!box) {
        state.resultError =
          `The box [${raw.join(', ')}] is empty or outside the ` +
          `${picture.pixels.width}×${picture.pixels.height} image.`;
        showError('result-error', state.resultError);
        return;
      }
      const run = lastRun,
        result = state.result;
      const r = await samDecodeBox(model.model, run.embedding, box, picture.pixels.width, picture.pixels.height);
      still(current);
      run.last = r;
      run.count++;
      result.boxes.push({ box: [...r.box], logits: [...r.logits], size: r.size, iou: r.iou, ms: r.ms });
      timing('decoder (last box)', r.ms);
      fillTimings('timings-run', [
        ['image embedding (upload + backbone + neck)', run.embedMs],
        ['decoder, last box (prompt + decoder + readback)', r.ms],
      ]);
      renderSam(picture.bitmap, r, overlayOn(), run.embedMs, result.untrained, run.count);
    },
  });
}

function redraw(): void {
  if (!model || !picture || !lastRun) return;
  const untrained = isUntrained(model.metadata);
  if (lastRun.kind === 'toco-cam') renderCam(lastRun.r, picture.bitmap, overlayOn(), CAM_THRESHOLD, untrained);
  else if (lastRun.kind === 'sam-box')
    renderSam(picture.bitmap, lastRun.last, overlayOn(), lastRun.embedMs, untrained, lastRun.count);
  else if (model.kind === 'eva02' && lastRun.kind === 'eva02')
    renderClassification(model, lastRun.r, picture.bitmap, overlayOn(), untrained);
  else if (lastRun.kind === 'polyp-pvt') {
    const { area } = renderSegmentation(lastRun.r, picture.bitmap, overlayOn(), untrained);
    if (state.result?.kind === 'polyp-pvt') state.result.maskArea = area;
    rescore();
  }
  state.view = { ...view };
}

// ---- wiring ---------------------------------------------------------------------------------------------

const markSample = (b: HTMLElement | null) =>
  $('samples')
    .querySelectorAll('button')
    .forEach((o) => o.classList.toggle('on', o === b));

function openSample(b: HTMLButtonElement, file: string): void {
  markSample(b);
  openImage(b.title, async () => {
    const r = await fetch(`samples/${file}`);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.blob();
  });
}

async function listSamples(): Promise<void> {
  const res = await fetch('samples/index.json');
  if (!res.ok) return;
  const samples = (await res.json()) as { file: string; title: string }[];
  const box = $('samples');
  for (const s of samples) {
    const b = document.createElement('button');
    b.title = s.title;
    b.dataset.file = s.file;
    b.innerHTML = `<img src="samples/${s.file}" alt="${s.title}">`;
    b.onclick = () => openSample(b, s.file);
    box.appendChild(b);
  }
}

async function listCheckpoints(): Promise<void> {
  const res = await fetch('checkpoints.json').catch(() => null);
  if (!res?.ok) return;
  catalog = (await res.json()) as CatalogEntry[];
  state.catalog = catalog.map((c) => ({
    url: c.url,
    label: entryLabel(c, fmtBytes),
    untrained: c.untrained,
    card: !!c.card,
    cardError: c.cardError ?? null,
  }));
  if (!catalog.length) return;
  $('ckpt-hint').hidden = true;
  const sel = $<HTMLSelectElement>('ckpt-list');
  sel.replaceChildren(new Option('choose a checkpoint…', ''), ...state.catalog.map((c) => new Option(c.label, c.url)));
  sel.onchange = () => {
    $<HTMLInputElement>('ckpt-url').value = sel.value;
    loadUrl(sel.value);
  };
}

function wire(): void {
  $('ckpt-load').onclick = () => loadUrl($<HTMLInputElement>('ckpt-url').value.trim());
  $<HTMLInputElement>('ckpt-url').onkeydown = (e) => {
    if (e.key === 'Enter') loadUrl($<HTMLInputElement>('ckpt-url').value.trim());
  };
  $<HTMLInputElement>('ckpt-file').onchange = (e) => {
    const input = e.target as HTMLInputElement,
      f = input.files?.[0];
    input.value = ''; // the summary names the file; the same file can be picked again
    if (f) loadFile(f);
  };
  $<HTMLInputElement>('image-file').onchange = (e) => {
    const input = e.target as HTMLInputElement,
      f = input.files?.[0];
    input.value = '';
    markSample(null);
    if (f) openImage(f.name, async () => f);
  };
  $('show-overlay').onchange = redraw;
  for (const id of ['batch-files', 'batch-folder']) {
    $<HTMLInputElement>(id).onchange = (e) => {
      const input = e.target as HTMLInputElement,
        all = Array.from(input.files ?? []);
      input.value = '';
      // A folder holds other files too: only images go in (picked files go in as chosen).
      openBatch(
        id === 'batch-folder'
          ? all
              .filter((f) => /\.(png|jpe?g|bmp|webp|gif)$/i.test(f.name))
              .sort((a, b) => a.webkitRelativePath.localeCompare(b.webkitRelativePath))
          : all,
      );
    };
  }
  wireBatchCsv(() => state.batch);
  $('camera-toggle').onclick = toggleCamera;
  $('result-side').onchange = (e) => {
    // the classifier's CAM class (render.ts draws the select)
    if ((e.target as HTMLElement).id === 'cam-class') {
      view.camClass = Number((e.target as HTMLSelectElement).value);
      redraw();
    }
  };
  wireOutputs(view, {
    seg: () =>
      lastRun?.kind === 'polyp-pvt' && picture
        ? { prob: lastRun.r.prob, size: lastRun.r.size, width: picture.pixels.width, height: picture.pixels.height }
        : null,
    numbers: () => (picture ? resultNumbers(state, picture, view.threshold) : null),
    redraw,
  });
  $<HTMLInputElement>('gt-file').onchange = (e) => {
    const input = e.target as HTMLInputElement,
      f = input.files?.[0];
    input.value = '';
    if (f) void openTruth(f);
  };
  wireBoxPrompt(() => (lastRun?.kind === 'sam-box' && picture ? picture.pixels : null), redraw, segmentBox);
  const drop = $('drop');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
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

/** First open: the default trained checkpoint (its card says so) on the sample its card names. */
function openDefault(): void {
  const first = catalog.find((c) => c.card?.default && !c.untrained);
  if (!first) return;
  $<HTMLSelectElement>('ckpt-list').value = first.url;
  $<HTMLInputElement>('ckpt-url').value = first.url;
  loadUrl(first.url);
  const want = first.card!.sample;
  const b = Array.from($('samples').querySelectorAll('button')).find((x) => x.title === want) as
    HTMLButtonElement | undefined;
  if (b) openSample(b, b.dataset.file!);
}

async function main(): Promise<void> {
  EMPTY_TEXT = $('result-empty').textContent ?? '';
  const pref = adapterPreference(location.search);
  wireAdapterControl(pref);
  const t0 = now();
  const got = await initBrowser({ featureLevel: pref, storage: globalThis.localStorage ?? null });
  setFlags(flagsFromQuery(new URLSearchParams(location.search))); // ?engine.debug=1&engine.matmul=tiled ...
  timing('acquire device', now() - t0);
  state.featureLevel = got.featureLevel;
  state.adapter = got.adapterName;
  state.adapterChoice = got.choice;
  const shown = showDevice(got, got.device.hasF16);
  state.cpuFallback = shown.cpuFallback;
  state.renderer = shown.renderer;
  const t1 = now();
  state.selfCheck = await selfCheck();
  timing('self-check', now() - t1);
  $('selfcheck').textContent =
    `Self-check (MLP + softmax, ${state.selfCheck.length} outputs) ok in ${(now() - t1).toFixed(0)} ` +
    `ms; device acquired in ${state.timings['acquire device'].toFixed(0)} ms.`;
  wire();
  await Promise.all([listSamples(), listCheckpoints()]);
  for (const id of ['model-controls', 'image-controls']) ($(id) as HTMLFieldSetElement).disabled = false;
  state.status = 'ready';
  $('status').textContent = 'ready';
  openDefault();
}

main().catch((e: unknown) => {
  state.status = 'error';
  state.error = message(e);
  const s = $('status');
  s.className = 'error';
  s.textContent = state.error;
  $('result-empty').textContent =
    'The models run on WebGPU, which this page could not use (see the message at the top).';
});
