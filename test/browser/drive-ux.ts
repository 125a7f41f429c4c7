// Drives the page as a user would, in its own process (see drive.ts for why), and prints what it
// saw as JSON for the tests to judge: a scenario clicks, picks and loads, and records the page's
// state (globalThis.__page) and what is visible at the moments that matter.
// Usage: npx tsx test/browser/drive-ux.ts <mode> <url> <scenario> <artifacts dir> [args.json]
// Scenarios:
//   states      busy state, coalesced clicks, a failed load keeping the model, per-image results
//   layout      screenshots at 390, 820 and 1280 px; horizontal overflow and clipped text
//   outputs     ground-truth Dice/IoU, threshold and opacity, mask/overlay/JSON downloads
//   batch       several images through the default segmenter, the CSV, a batch cut short
//   camera      live segmentation of Chromium's fake camera, frames per second, Stop
//   first-open  the default model's first result and how long it took from navigation, on a
//               first visit (adapter measured) and a second (adapter choice remembered)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launch, CHROMIUM, type Mode } from './harness.ts';

type State = Record<string, unknown> & { actions: number; busy: boolean; status: string; runs: number };
const pageState = (page: Page) => page.evaluate(() => (globalThis as unknown as { __page: State }).__page);

async function open(page: Page, url: string, timeoutMs = 120_000): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(
    () => (globalThis as unknown as { __page?: { status: string } }).__page?.status !== 'starting',
    undefined,
    { timeout: timeoutMs },
  );
}

/** Waits until `n` requests have settled and none runs. */
async function settled(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (k) => {
      const s = (globalThis as unknown as { __page: State }).__page;
      return s.actions >= k && !s.busy;
    },
    n,
    { timeout: 150_000 },
  );
}

/** What is on screen now: visibility and texts of the parts the tests judge, with the state. */
const snapshot = (page: Page) =>
  page.evaluate(() => {
    const el = (id: string) => document.getElementById(id)!;
    const shown = (id: string) => {
      const e = el(id);
      return !e.hidden && e.offsetParent !== null;
    };
    return {
      state: JSON.parse(JSON.stringify((globalThis as unknown as { __page: object }).__page)) as Record<
        string,
        unknown
      >,
      busyShown: shown('busy'),
      busyText: el('busy-text').textContent,
      resultBusy: el('result').classList.contains('busy'),
      resultShown: shown('result-body'),
      resultEmpty: shown('result-empty') ? el('result-empty').textContent : null,
      timingsRun: el('timings-run').textContent,
      timingsRunTitle: el('timings-run-title').textContent,
      modelError: shown('model-error') ? el('model-error').textContent : null,
      imageError: shown('image-error') ? el('image-error').textContent : null,
      resultError: shown('result-error') ? el('result-error').textContent : null,
      ood: shown('ood-hint') ? el('ood-hint').textContent : null,
      modelInfo: el('model-info').textContent,
      resultSide: el('result-side').textContent,
      options: Array.from((el('ckpt-list') as HTMLSelectElement).options).map((o) => o.textContent),
      device: el('device').textContent,
      adapterHow: el('adapter-how').textContent,
    };
  });

/** Clicks the samples titled `titles` in one task (faster than any inference), then snapshots. */
const clickSamples = (page: Page, titles: string[]) =>
  page.evaluate((ts) => {
    for (const t of ts) (document.querySelector(`#samples button[title="${t}"]`) as HTMLButtonElement).click();
    const s = (globalThis as unknown as { __page: { busy: boolean; result: unknown; actions: number } }).__page;
    return {
      busy: s.busy,
      result: s.result,
      busyShown: !document.getElementById('busy')!.hidden,
      resultShown: !document.getElementById('result-body')!.hidden,
      resultEmpty: document.getElementById('result-empty')!.textContent,
      timingsRun: document.getElementById('timings-run')!.textContent,
    };
  }, titles);

async function load(page: Page, url: string, kind = 'auto'): Promise<void> {
  await page.selectOption('#model-kind', kind);
  await page.fill('#ckpt-url', url);
  await page.click('#ckpt-load');
}

async function states(
  page: Page,
  base: string,
  args: { pvt: string; eva: string; notImage: string; wrongKind: string },
) {
  await open(page, base);
  const out: Record<string, unknown> = { ready: await snapshot(page) };
  await load(page, args.pvt);
  await page.click('#samples button[title="Colonoscopy: polyp"]');
  await settled(page, 2);
  out.first = await snapshot(page);
  // Another image: the old result and its timings go at once, the busy state shows.
  out.switchNow = await clickSamples(page, ['Colonoscopy: polyp (2)']);
  await settled(page, 3);
  out.switched = await snapshot(page);
  // Four quick clicks: the first runs, the two in between are superseded, the last is shown.
  const runsBefore = (await pageState(page)).runs;
  out.rapidNow = await clickSamples(page, [
    'Capsule: bleeding',
    'Capsule: ulcer',
    'Capsule: polyp',
    'Colonoscopy: polyp',
  ]);
  await settled(page, 7);
  out.rapid = { ...(await snapshot(page)), runsDuring: (await pageState(page)).runs - runsBefore };
  // Failed loads (a missing file; a checkpoint into the wrong model) keep the working model and its result.
  await load(page, '/missing.safetensors');
  await settled(page, 8);
  out.missing = await snapshot(page);
  await load(page, args.wrongKind, 'eva02');
  await settled(page, 9);
  out.wrongKind = await snapshot(page);
  // An image that does not decode shows its error; the next image clears it.
  await page.setInputFiles('#image-file', args.notImage);
  await settled(page, 10);
  out.badImage = await snapshot(page);
  await page.click('#samples button[title="Colonoscopy: polyp (2)"]');
  await settled(page, 11);
  out.afterBadImage = await snapshot(page);
  // The EVA-02 demo checkpoint (untrained) on a capsule frame.
  await load(page, args.eva);
  await page.click('#samples button[title="Capsule: bleeding"]');
  await settled(page, 13);
  out.eva = { ...(await snapshot(page)), caption: await page.textContent('#caption') };
  // The activation map of another class than the top one.
  await page.selectOption('#cam-class', '3');
  out.camClass = { ...(await snapshot(page)), caption: await page.textContent('#caption') };
  return out;
}

/** Horizontal overflow of the document, and elements whose content is wider than their box. */
const layoutProblems = (page: Page) =>
  page.evaluate(() => {
    const doc = document.documentElement,
      problems: string[] = [];
    if (doc.scrollWidth > window.innerWidth)
      problems.push(`document ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`);
    for (const e of Array.from(document.body.querySelectorAll<HTMLElement>('*'))) {
      if (e.offsetParent === null || e.clientWidth === 0) continue;
      const cs = getComputedStyle(e);
      if (cs.overflowX === 'auto' || cs.overflowX === 'scroll' || e.tagName === 'SELECT' || e.tagName === 'INPUT')
        continue;
      const r = e.getBoundingClientRect();
      const cls = e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '';
      const name = `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${cls}`;
      if (e.scrollWidth > e.clientWidth + 1)
        problems.push(
          `${name}: content ${e.scrollWidth} px in a ${e.clientWidth} px box ` +
            `("${(e.textContent ?? '').trim().slice(0, 40)}")`,
        );
      if (r.right > window.innerWidth + 0.5 || r.left < -0.5)
        problems.push(
          `${name}: spans ${r.left.toFixed(0)}..${r.right.toFixed(0)} px of a ${window.innerWidth} px window`,
        );
    }
    return problems;
  });

async function layout(page: Page, base: string, args: { mode: string; artifacts: string; pvt?: string }) {
  await open(page, base);
  let n = 0;
  if (args.pvt) {
    await load(page, args.pvt);
    await page.click('#samples button[title="Colonoscopy: polyp"]');
    n = 2;
  } else n = (await pageState(page)).busy ? 2 : 0; // the default model and its sample
  await settled(page, n);
  const out: Record<string, unknown> = {};
  for (const [w, h] of [
    [390, 844],
    [820, 1180],
    [1280, 800],
  ]) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(200);
    const shot = join(args.artifacts, `layout-${args.mode}-${w}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    out[w] = { problems: await layoutProblems(page), shot, resultShown: await page.isVisible('#result-body') };
  }
  return out;
}

/**
 * A first visit (fresh profile): time from navigation to the default model's first result; then
 * a second visit in the same profile, where the adapter choice is remembered, timed the same way.
 */
async function firstOpen(page: Page, base: string, args: { mode: string; artifacts: string }) {
  const visit = async (name: string) => {
    const t0 = Date.now();
    await open(page, base);
    await page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { __page: State }).__page;
        return s.runs >= 1 || !!s.resultError || !!s.modelError || !!s.imageError;
      },
      undefined,
      { timeout: 150_000 },
    );
    const firstResultMs = Date.now() - t0;
    await settled(page, 2);
    await page.screenshot({ path: join(args.artifacts, `first-open-${args.mode}-${name}.png`), fullPage: true });
    return { firstResultMs, ...(await snapshot(page)) };
  };
  const first = await visit('first');
  const again = await visit('again');
  return { first, again };
}

/** Sets a range input's value as a user's drag would (an input event). */
const slide = (page: Page, id: string, value: number) =>
  page.evaluate(
    ([i, v]) => {
      const e = document.getElementById(i as string) as HTMLInputElement;
      e.value = String(v);
      e.dispatchEvent(new Event('input'));
    },
    [id, value],
  );

/** Saves the file a click on `selector` downloads, under `path`. */
async function downloaded(page: Page, selector: string, path: string): Promise<{ path: string; name: string }> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  await d.saveAs(path);
  return { path, name: d.suggestedFilename() };
}

/** The default model's mask of its sample: ground truth and Dice, threshold, opacity, downloads. */
async function outputs(page: Page, base: string, args: { mode: string; artifacts: string; truth: string }) {
  await open(page, base);
  await settled(page, 2);
  const out: Record<string, unknown> = { before: await snapshot(page) };
  await page.setInputFiles('#gt-file', args.truth);
  await page.waitForFunction(
    () => !!(globalThis as unknown as { __page: { truth: unknown } }).__page.truth,
    undefined,
    { timeout: 30_000 },
  );
  out.truth = await snapshot(page);
  out.gtText = await page.textContent('#gt-score');
  await slide(page, 'threshold', 0.3);
  await slide(page, 'opacity', 0.5);
  out.lowered = await snapshot(page);
  out.caption = await page.textContent('#caption');
  const d = (f: string) => join(args.artifacts, `outputs-${args.mode}-${f}`);
  out.mask = await downloaded(page, '#dl-mask', d('mask.png'));
  out.overlay = await downloaded(page, '#dl-overlay', d('overlay.png'));
  out.json = await downloaded(page, '#dl-json', d('result.json'));
  // Another image: the ground truth and its scores go with the old result.
  await page.click('#samples button[title="Colonoscopy: polyp (2)"]');
  await settled(page, 3);
  out.next = await snapshot(page);
  out.nextGtText = await page.textContent('#gt-score');
  return out;
}

/** Batch mode on the default segmenter: a batch to the end with its CSV, then one cut short by a sample click. */
async function batch(
  page: Page,
  base: string,
  args: { mode: string; artifacts: string; files: string[]; many: string[] },
) {
  await open(page, base);
  await settled(page, 2);
  await page.setInputFiles('#batch-files', args.files);
  await settled(page, 3);
  const full = {
    ...(await snapshot(page)),
    table: await page.textContent('#batch-table'),
    progress: await page.textContent('#batch-progress'),
  };
  const csv = await downloaded(page, '#batch-csv', join(args.artifacts, `batch-${args.mode}.csv`));
  await page.setInputFiles('#batch-files', args.many);
  await page.click('#samples button[title="Colonoscopy: polyp (2)"]');
  await settled(page, 5);
  const cut = { ...(await snapshot(page)), progress: await page.textContent('#batch-progress') };
  return { full, csv, cut };
}

/** Camera mode on the default segmenter with the fake camera: frames run, frames per second, Stop. */
async function camera(page: Page, base: string) {
  await open(page, base);
  await settled(page, 2);
  await page.click('#camera-toggle');
  await page.waitForFunction(
    () =>
      ((globalThis as unknown as { __page: { camera: { frames: number } | null } }).__page.camera?.frames ?? 0) >= 12,
    undefined,
    { timeout: 180_000 },
  );
  const live = {
    ...(await snapshot(page)),
    fpsText: await page.textContent('#camera-fps'),
    button: await page.textContent('#camera-toggle'),
  };
  await page.click('#camera-toggle');
  await settled(page, 3);
  const stopped = { ...(await snapshot(page)), button: await page.textContent('#camera-toggle') };
  return { live, stopped };
}

process.on('uncaughtException', (e) => {
  if (/Cannot find object to "pausedStateChanged"/.test(String(e?.message))) return;
  console.error(e);
  process.exit(2);
});

const [mode, url, scenario, artifacts, argsFile] = process.argv.slice(2) as [Mode, string, string, string, string?];
const args = { mode, artifacts, ...(argsFile ? JSON.parse(readFileSync(argsFile, 'utf8')) : {}) };
if (!CHROMIUM) throw new Error('Chromium is not installed');
// The camera scenario gets Chromium's fake camera (a moving test pattern) and no permission prompt.
const browser = await launch(
  mode,
  scenario === 'camera' ? ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] : [],
);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  // tsx keeps function names with an `__name` helper that page.evaluate's serialised functions lack.
  await page.addInitScript({ content: 'globalThis.__name = (f) => f;' });
  const logs: string[] = [];
  page.on('pageerror', (e) => logs.push(String(e)));
  const run = { states, layout, 'first-open': firstOpen, outputs, batch, camera }[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  const result = await run(page, url, args);
  process.stdout.write('\n@@STATE@@' + JSON.stringify({ ...result, pageErrors: logs }) + '\n');
} finally {
  await browser.close();
}
process.exit(0);
