// Drives one browser session in its own process and prints the page state as JSON. Playwright
// runs here rather than inside the test worker: playwright-core 1.65 with Chromium 156 emits a
// stray protocol event ("Cannot find object to pausedStateChanged") as an uncaught error when a
// page opens, which is harmless but would be reported against the test run.
// Usage: npx tsx test/browser/drive.ts <mode> <url> <screenshot.png> [no-webgpu | infer <steps.json>]
// `infer` then works the page's controls step by step (model kind, checkpoint URL, image file or
// a bundled sample),
// waits for each step's actions to finish, and takes a screenshot after each.
import { readFileSync } from 'node:fs';
import { launch, openPage, type Mode } from './harness.ts';
import type { Page } from 'playwright-core';

/** One step of an `infer` run; `shot` is the screenshot written after it. */
export interface Step {
  kind?: 'auto' | 'eva02' | 'polyp-pvt' | 'toco-cam' | 'sam-box';
  checkpoint?: string;
  image?: string;
  sample?: string;
  /** A box prompt dragged with the mouse over the view, in image pixels [x0, y0, x1, y1]. */
  drag?: number[];
  /** A box prompt typed into the x0/y0/x1/y1 fields (then Enter in the last field when `enter`, else the button). */
  typed?: number[];
  enter?: boolean;
  shot: string;
}

/** Drags from corner to corner of `box` (image pixels) over the view canvas, in several pointer moves. */
async function dragBox(page: Page, box: number[]): Promise<void> {
  const r = (await page.locator('#view').boundingBox())!;
  const img = (await pageState(page)).image as { width: number; height: number };
  const at = (x: number, y: number): [number, number] => [
    r.x + (x * r.width) / img.width,
    r.y + (y * r.height) / img.height,
  ];
  await page.mouse.move(...at(box[0], box[1]));
  await page.mouse.down();
  await page.mouse.move(...at((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), { steps: 4 });
  await page.mouse.move(...at(box[2], box[3]), { steps: 4 });
  await page.mouse.up();
}

const pageState = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { __page: Record<string, unknown> }).__page);

async function runSteps(page: Page, steps: Step[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const step of steps) {
    const before = (await pageState(page)).actions as number;
    let expected = 0;
    if (step.kind) await page.selectOption('#model-kind', step.kind);
    if (step.checkpoint) {
      await page.fill('#ckpt-url', step.checkpoint);
      await page.click('#ckpt-load');
      expected++;
    }
    if (step.image) {
      await page.setInputFiles('#image-file', step.image);
      expected++;
    }
    if (step.sample) {
      await page.click(`#samples button[title="${step.sample}"]`);
      expected++;
    }
    if (step.drag) {
      await dragBox(page, step.drag);
      expected++;
    }
    if (step.typed) {
      for (const [i, id] of ['x0', 'y0', 'x1', 'y1'].entries()) await page.fill(`#box-${id}`, String(step.typed[i]));
      if (step.enter) await page.press('#box-y1', 'Enter');
      else await page.click('#box-run');
      expected++;
    }
    await page.waitForFunction(
      (n) => {
        const s = (globalThis as unknown as { __page: { actions: number; busy: boolean } }).__page;
        return s.actions >= n && !s.busy;
      },
      before + expected,
      { timeout: 120_000 },
    );
    await page.screenshot({ path: step.shot, fullPage: true });
    out.push({
      ...(await pageState(page)),
      modelErrorShown: (await page.isVisible('#model-error')) ? await page.textContent('#model-error') : null,
      resultShown: await page.isVisible('#result-body'),
    });
  }
  return out;
}

process.on('uncaughtException', (e) => {
  if (/Cannot find object to "pausedStateChanged"/.test(String(e?.message))) return;
  console.error(e);
  process.exit(2);
});

const [mode, url, shot, variant, stepsFile] = process.argv.slice(2) as [Mode, string, string, string?, string?];
const browser = await launch(mode);
try {
  let state: unknown;
  if (variant === 'no-webgpu') {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      Object.defineProperty(navigator, 'gpu', { value: undefined });
    });
    await page.goto(url);
    await page.waitForFunction(
      () => (globalThis as unknown as { __page?: { status: string } }).__page?.status !== 'starting',
      undefined,
      { timeout: 30_000 },
    );
    state = {
      ...(await page.evaluate(() => (globalThis as unknown as { __page: object }).__page)),
      statusText: await page.textContent('#status'),
    };
    await page.screenshot({ path: shot });
  } else if (variant === 'infer') {
    const page = await openPage(browser, url, mode);
    const ready = await pageState(page);
    await page.screenshot({ path: shot, fullPage: true });
    state = {
      ready,
      steps:
        ready.status === 'ready' ? await runSteps(page, JSON.parse(readFileSync(stepsFile!, 'utf8')) as Step[]) : [],
    };
  } else {
    const page = await openPage(browser, url, mode);
    state = await page.evaluate(() => (globalThis as unknown as { __page: object }).__page);
    await page.screenshot({ path: shot });
  }
  process.stdout.write('\n@@STATE@@' + JSON.stringify(state) + '\n');
} finally {
  await browser.close();
}
process.exit(0);
