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
export interface Step { kind?: 'auto' | 'eva02' | 'polyp-pvt'; checkpoint?: string; image?: string; sample?: string; shot: string }

const pageState = (page: Page) => page.evaluate(() => (globalThis as unknown as { __page: Record<string, unknown> }).__page);

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
    await page.waitForFunction((n) => {
      const s = (globalThis as unknown as { __page: { actions: number; busy: boolean } }).__page;
      return s.actions >= n && !s.busy;
    }, before + expected, { timeout: 120_000 });
    await page.screenshot({ path: step.shot, fullPage: true });
    out.push({
      ...(await pageState(page)),
      modelErrorShown: await page.isVisible('#model-error') ? await page.textContent('#model-error') : null,
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
    await page.addInitScript(() => { Object.defineProperty(navigator, 'gpu', { value: undefined }); });
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as unknown as { __page?: { status: string } }).__page?.status !== 'starting', undefined, { timeout: 30_000 });
    state = { ...(await page.evaluate(() => (globalThis as unknown as { __page: object }).__page)), statusText: await page.textContent('#status') };
    await page.screenshot({ path: shot });
  } else if (variant === 'infer') {
    const page = await openPage(browser, url, mode);
    const ready = await pageState(page);
    await page.screenshot({ path: shot, fullPage: true });
    state = { ready, steps: ready.status === 'ready' ? await runSteps(page, JSON.parse(readFileSync(stepsFile!, 'utf8')) as Step[]) : [] };
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
