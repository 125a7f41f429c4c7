// Running the loaded model on the shown picture and showing its result: the result panel cleared
// for a new image or model (its timings and errors with it), one run per model kind (EVA-02 ->
// class probabilities and a class-activation map, Polyp-PVT -> a polyp mask, ToCo -> a CAM heat
// map and EndoKED's box, the SAM-style decoder -> an image embedding, then a mask per box prompt),
// a redraw when a display setting changes, and the shown mask scored against a ground truth.
// Everything goes through the same engine, shaders, preprocessing (preprocess.ts) and model code
// (infer.ts, endoked.ts) as Node.
import { preprocess } from './preprocess.ts';
import { camAndBox, samEmbed, samDecodeBox, normaliseBox, isUntrained, CAM_THRESHOLD } from './endoked.ts';
import { renderCam, renderSam } from './endoked-ui.ts';
import { classify, segment, type StageTimes } from './infer.ts';
import { $, showError, fillTimings, renderClassification, renderSegmentation, view } from './render.ts';
import { decode } from './load-io.ts';
import { showDomain, showScore } from './result-extras.ts';
import { requests, still, message, now, timing, Superseded } from './jobs.ts';
import { state, live } from './state.ts';

const overlayOn = () => $<HTMLInputElement>('show-overlay').checked;

/** Empties the result panel and the per-image timings, with `note` in their place. */
export function clearResult(note: string): void {
  state.result = null;
  state.resultError = null;
  showError('result-error', null);
  if (live.lastRun?.kind === 'sam-box') live.lastRun.embedding.dispose();
  live.lastRun = null;
  $('box-controls').hidden = true;
  $('result-tools').hidden = true;
  $('ood-hint').hidden = true;
  view.camClass = -1; // a new result shows its own top class's map first
  state.domain = null;
  live.truth = null;
  state.truth = null;
  $('gt-score').textContent = '';
  $('view').classList.remove('prompt');
  $('result-body').hidden = true;
  $('result-empty').hidden = false;
  $('result-empty').textContent = note || live.emptyText;
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

/**
 * Runs the model on the current picture and shows the result; a camera `frame` keeps the last one up meanwhile.
 */
export async function run(current: () => boolean, frame = false): Promise<void> {
  if (!live.model || !live.picture) return;
  const m = live.model,
    pic = live.picture;
  if (!frame) clearResult(`Running ${state.model?.source} on ${pic.name}…`);
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
      live.lastRun = { kind: 'toco-cam', r };
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
      live.lastRun = { kind: 'sam-box', embedding, embedMs: ms, last: null, count: 0 };
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
      live.lastRun = { kind: 'eva02', r };
    } else {
      const r = await segment(m, input);
      still(current);
      times = r.times;
      const { area } = renderSegmentation(r, pic.bitmap, overlayOn(), untrained);
      state.result = { kind: 'polyp-pvt', for: forImage, prob: [...r.prob], size: r.size, maskArea: area };
      live.lastRun = { kind: 'polyp-pvt', r };
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
export function rescore(): void {
  if (!live.truth || live.lastRun?.kind !== 'polyp-pvt') return;
  state.truth = showScore(live.truth, live.lastRun.r, view.threshold);
}

export async function openTruth(file: File): Promise<void> {
  const pic = live.picture;
  try {
    const { bitmap, pixels } = await decode(file);
    bitmap.close();
    if (pic !== live.picture) return; // another image came meanwhile: the mask was for the old one
    live.truth = { name: file.name, pixels };
    rescore();
  } catch (e) {
    $('gt-score').textContent = `${file.name}: cannot decode this mask (${message(e)})`;
  }
}

/** One box prompt (image pixels) through the decoder over the cached embedding. */
export function segmentBox(raw: number[]): void {
  requests.submit({
    lane: 'box',
    what: `Segmenting box [${raw.join(', ')}]`,
    run: async (current) => {
      if (
        !live.model ||
        live.model.kind !== 'sam-box' ||
        !live.picture ||
        live.lastRun?.kind !== 'sam-box' ||
        state.result?.kind !== 'sam-box'
      )
        return;
      state.resultError = null;
      showError('result-error', null);
      const box = normaliseBox(raw, live.picture.pixels.width, live.picture.pixels.height);
      if (!box) {
        state.resultError =
          `The box [${raw.join(', ')}] is empty or outside the ` +
          `${live.picture.pixels.width}×${live.picture.pixels.height} image.`;
        showError('result-error', state.resultError);
        return;
      }
      const run = live.lastRun,
        result = state.result;
      const r = await samDecodeBox(
        live.model.model,
        run.embedding,
        box,
        live.picture.pixels.width,
        live.picture.pixels.height,
      );
      still(current);
      run.last = r;
      run.count++;
      result.boxes.push({ box: [...r.box], logits: [...r.logits], size: r.size, iou: r.iou, ms: r.ms });
      timing('decoder (last box)', r.ms);
      fillTimings('timings-run', [
        ['image embedding (upload + backbone + neck)', run.embedMs],
        ['decoder, last box (prompt + decoder + readback)', r.ms],
      ]);
      renderSam(live.picture.bitmap, r, overlayOn(), run.embedMs, result.untrained, run.count);
    },
  });
}

export function redraw(): void {
  if (!live.model || !live.picture || !live.lastRun) return;
  const untrained = isUntrained(live.model.metadata);
  if (live.lastRun.kind === 'toco-cam')
    renderCam(live.lastRun.r, live.picture.bitmap, overlayOn(), CAM_THRESHOLD, untrained);
  else if (live.lastRun.kind === 'sam-box')
    renderSam(live.picture.bitmap, live.lastRun.last, overlayOn(), live.lastRun.embedMs, untrained, live.lastRun.count);
  else if (live.model.kind === 'eva02' && live.lastRun.kind === 'eva02')
    renderClassification(live.model, live.lastRun.r, live.picture.bitmap, overlayOn(), untrained);
  else if (live.lastRun.kind === 'polyp-pvt') {
    const { area } = renderSegmentation(live.lastRun.r, live.picture.bitmap, overlayOn(), untrained);
    if (state.result?.kind === 'polyp-pvt') state.result.maskArea = area;
    rescore();
  }
  state.view = { ...view };
}
