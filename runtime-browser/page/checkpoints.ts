// Opening a checkpoint: the served list (/checkpoints.json, catalog.ts: trained ones with their
// model cards first, untrained ones labelled), a served URL or a local file read with a progress
// bar, then built, uploaded and warmed up beside the current model, which it replaces only once it
// works (a checkpoint that fails to load leaves the working one, its result and its timings in
// place). A picture already shown runs through the new model.
import { device } from '../../engine/index.ts';
import { isUntrained } from './endoked.ts';
import { loadCheckpoint, warmupModel, type LoadedModel } from './infer.ts';
import { $, showError, fmtBytes, fillTimings, modelSummary, cardHtml } from './render.ts';
import { readAll, progress } from './load-io.ts';
import { entryLabel, type CatalogEntry } from './catalog.ts';
import { requests, still, message, now, timing, Superseded } from './jobs.ts';
import { clearResult, run } from './result.ts';
import { state, live } from './state.ts';

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
    live.model?.model.dispose();
    live.model = next;
    next = null;
    clearResult('');
    const entry = live.catalog.find((c) => c.url === source);
    const untrained = isUntrained(live.model.metadata);
    fillTimings('timings-load', [
      ['download / read', t1 - t0],
      ['build + upload weights', t2 - t1],
    ]);
    timing('checkpoint read', t1 - t0);
    timing('checkpoint load', t2 - t1);
    state.model = {
      kind: live.model.kind,
      source,
      classes: live.model.kind === 'eva02' ? live.model.classes : undefined,
      untrained,
      card: entry?.card ?? null,
      numParameters: live.model.numParameters,
      inputSize: live.model.inputSize,
      notes: live.model.notes,
    };
    $('ckpt-progress-text').textContent = `Loaded ${source} (${fmtBytes(bytes.length)}).`;
    $('model-info').innerHTML =
      modelSummary(live.model, source, untrained) +
      (entry?.card ? cardHtml(entry.card, !matchMedia('(max-width: 900px)').matches) : '');
  } catch (e) {
    next?.model.dispose();
    if (e instanceof Superseded) throw e;
    state.modelError = message(e);
    $('ckpt-progress-text').textContent = live.model
      ? `Could not load ${source}; still using ${state.model?.source}.`
      : `Could not load ${source}.`;
    showError('model-error', state.modelError);
    return;
  }
  // A waiting image request runs through the new model itself.
  if (live.picture && !requests.pending('image')) await run(current);
}

export function loadUrl(url: string): void {
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

export function loadFile(file: File): void {
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

export async function listCheckpoints(): Promise<void> {
  const res = await fetch('checkpoints.json').catch(() => null);
  if (!res?.ok) return;
  live.catalog = (await res.json()) as CatalogEntry[];
  state.catalog = live.catalog.map((c) => ({
    url: c.url,
    label: entryLabel(c, fmtBytes),
    untrained: c.untrained,
    card: !!c.card,
    cardError: c.cardError ?? null,
  }));
  if (!live.catalog.length) return;
  $('ckpt-hint').hidden = true;
  const sel = $<HTMLSelectElement>('ckpt-list');
  sel.replaceChildren(new Option('choose a checkpoint…', ''), ...state.catalog.map((c) => new Option(c.label, c.url)));
  sel.onchange = () => {
    $<HTMLInputElement>('ckpt-url').value = sel.value;
    loadUrl(sel.value);
  };
}
