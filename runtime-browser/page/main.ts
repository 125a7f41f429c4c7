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
// This file wires the DOM and starts the page; the work is in checkpoints.ts (opening a model),
// images.ts (images, batches, the camera), result.ts (running and showing a result) and jobs.ts
// (the request queue), sharing state.ts (`globalThis.__page` mirrors the page's state for the
// browser tests).
import { initBrowser } from '../index.ts';
import { selfCheck } from './selfcheck.ts';
import { setFlags, flagsFromQuery } from '../../engine/index.ts';
import { wireBoxPrompt } from './endoked-ui.ts';
import { $, view } from './render.ts';
import { wireOutputs } from './outputs.ts';
import { wireBatchCsv } from './batch.ts';
import { resultNumbers } from './result-extras.ts';
import { showDevice, wireAdapterControl, adapterPreference } from './device-ui.ts';
import { message, now, timing } from './jobs.ts';
import { loadUrl, loadFile, listCheckpoints } from './checkpoints.ts';
import { openImage, openBatch, toggleCamera, markSample, openSample, listSamples } from './images.ts';
import { openTruth, segmentBox, redraw } from './result.ts';
import { state, live } from './state.ts';

/** Every control's handler: checkpoints, images, batches, the camera, display settings, drag and drop. */
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
      live.lastRun?.kind === 'polyp-pvt' && live.picture
        ? {
            prob: live.lastRun.r.prob,
            size: live.lastRun.r.size,
            width: live.picture.pixels.width,
            height: live.picture.pixels.height,
          }
        : null,
    numbers: () => (live.picture ? resultNumbers(state, live.picture, view.threshold) : null),
    redraw,
  });
  $<HTMLInputElement>('gt-file').onchange = (e) => {
    const input = e.target as HTMLInputElement,
      f = input.files?.[0];
    input.value = '';
    if (f) void openTruth(f);
  };
  wireBoxPrompt(
    () => (live.lastRun?.kind === 'sam-box' && live.picture ? live.picture.pixels : null),
    redraw,
    segmentBox,
  );
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
  const first = live.catalog.find((c) => c.card?.default && !c.untrained);
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
  live.emptyText = $('result-empty').textContent ?? '';
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
