// Drives one browser session in its own process and prints the page state as JSON. Playwright
// runs here rather than inside the test worker: playwright-core 1.65 with Chromium 156 emits a
// stray protocol event ("Cannot find object to pausedStateChanged") as an uncaught error when a
// page opens, which is harmless but would be reported against the test run.
// Usage: npx tsx test/browser/drive.ts <mode> <url> <screenshot.png> [no-webgpu]
import { launch, openPage, type Mode } from './harness.ts';

process.on('uncaughtException', (e) => {
  if (/Cannot find object to "pausedStateChanged"/.test(String(e?.message))) return;
  console.error(e);
  process.exit(2);
});

const [mode, url, shot, variant] = process.argv.slice(2) as [Mode, string, string, string?];
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
