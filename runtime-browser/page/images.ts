// The images the page runs on: a picked, dropped or sample image (decoded, then run through the
// loaded model; the old result, its timings and errors go at once), a batch of files or a folder
// into the batch table (batch.ts), and the camera, one request that runs frame after frame
// (camera.ts). The bundled samples (samples/index.json) are listed as buttons.
import { rgbChecksum } from './preprocess.ts';
import { $, showError, view } from './render.ts';
import { decode } from './load-io.ts';
import { runBatch, renderBatch, type BatchState } from './batch.ts';
import { cameraLoop, type CameraState } from './camera.ts';
import { requests, still, message, now, Superseded } from './jobs.ts';
import { clearResult, run } from './result.ts';
import { state, live } from './state.ts';

/** A new image: the old result, its timings and errors go at once; then decode and run. */
export function openImage(name: string, getBlob: () => Promise<Blob>): void {
  state.imageError = null;
  showError('image-error', null);
  state.image = null;
  $('image-info').textContent = `Image: ${name} (decoding…)`;
  clearResult(live.model ? `Running ${state.model?.source} on ${name}…` : `${name}: load a checkpoint to run it.`);
  requests.submit({
    lane: 'image',
    what: `${live.model ? 'Running on' : 'Decoding'} ${name}`,
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
        live.picture?.bitmap.close();
        live.picture = null;
        return;
      }
      if (!current()) {
        decoded.bitmap.close();
        still(current);
      }
      live.picture?.bitmap.close();
      live.picture = { ...decoded, name, checksum: rgbChecksum(decoded.pixels), decodeMs: now() - t0 };
      state.image = {
        name,
        width: decoded.pixels.width,
        height: decoded.pixels.height,
        checksum: live.picture.checksum,
      };
      $('image-info').textContent = `Image: ${name} (${decoded.pixels.width}×${decoded.pixels.height})`;
      // A waiting checkpoint runs this image itself once it is loaded.
      if (live.model && !requests.pending('model')) await run(current);
    },
  });
}

/** Several images (files or a folder) through the loaded model, into the batch table. */
export function openBatch(files: File[]): void {
  if (!files.length) return;
  requests.submit({
    lane: 'image',
    what: `Batch of ${files.length} image${files.length > 1 ? 's' : ''}`,
    run: async (current) => {
      if (!live.model) throw new Error('load a classifier or segmenter checkpoint first');
      const b: BatchState = { model: state.model!.source, total: files.length, rows: [], stopped: false };
      state.batch = b;
      renderBatch(b);
      const finished = await runBatch(
        live.model,
        files,
        view.threshold,
        state.model?.card?.inputStats,
        current,
        (row) => {
          b.rows.push(row);
          renderBatch(b);
        },
      );
      if (!finished) {
        b.stopped = true;
        renderBatch(b);
        still(current);
      }
    },
  });
}

/** The camera loop (camera.ts): one request that runs frame after frame until stopped or superseded. */
export function toggleCamera(): void {
  if (state.camera?.running) {
    live.cameraWanted = false;
    return;
  }
  live.cameraWanted = true;
  markSample(null);
  clearResult('Opening the camera…');
  requests.submit({
    lane: 'image',
    what: 'Camera',
    run: async (current) => {
      if (live.model?.kind !== 'eva02' && live.model?.kind !== 'polyp-pvt')
        throw new Error('camera mode runs a loaded EVA-02 classifier or Polyp-PVT segmenter');
      const cam: CameraState = { running: true, frames: 0, fps: 0, width: 0, height: 0, error: null };
      state.camera = cam;
      $('camera-toggle').textContent = 'Stop camera';
      try {
        await cameraLoop(
          $<HTMLVideoElement>('camera-video'),
          cam,
          () => current() && live.cameraWanted,
          async (frame) => {
            live.picture?.bitmap.close();
            live.picture = { ...frame, name: `camera frame ${cam.frames}`, checksum: '', decodeMs: 0 };
            state.image = {
              name: live.picture.name,
              width: frame.pixels.width,
              height: frame.pixels.height,
              checksum: '',
            };
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

export const markSample = (b: HTMLElement | null) =>
  $('samples')
    .querySelectorAll('button')
    .forEach((o) => o.classList.toggle('on', o === b));

export function openSample(b: HTMLButtonElement, file: string): void {
  markSample(b);
  openImage(b.title, async () => {
    const r = await fetch(`samples/${file}`);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.blob();
  });
}

export async function listSamples(): Promise<void> {
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
