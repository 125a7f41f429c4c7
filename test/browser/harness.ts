// Launches Debian's Chromium through playwright-core in the two WebGPU modes PLATFORM.md
// describes (SwiftShader at the core feature level; ANGLE over lavapipe at the compatibility
// level) against the bundled page served from 127.0.0.1.
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));

const COMMON = [
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--enable-unsafe-webgpu',
];

export const MODES = {
  'swiftshader-core': { args: COMMON, query: '' },
  'angle-compatibility': {
    args: [...COMMON, '--use-angle=vulkan', '--use-webgpu-adapter=opengles'],
    query: '?featureLevel=compatibility',
  },
} as const;
export type Mode = keyof typeof MODES;

/** `extra`: more Chromium flags (e.g. a fake camera for the camera test). */
export async function launch(mode: Mode, extra: string[] = []): Promise<Browser> {
  if (!CHROMIUM) throw new Error('Chromium is not installed: run `bash .ci/setup.sh` (apt-get install chromium)');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 120_000,
    // launch() gives every browser a fresh temporary profile (the fresh --user-data-dir PLATFORM.md asks for).
    args: [...MODES[mode].args, ...extra],
  });
}

/** Opens the page and waits until it reports ready or an error (never hangs past the timeout). */
export async function openPage(browser: Browser, baseUrl: string, mode: Mode, timeoutMs = 90_000): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  const logs: string[] = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  await page.goto(baseUrl + MODES[mode].query);
  await page
    .waitForFunction(
      () => {
        const s = (globalThis as unknown as { __page?: { status: string } }).__page;
        return s && s.status !== 'starting';
      },
      undefined,
      { timeout: timeoutMs },
    )
    .catch(() => {
      throw new Error(`page did not get ready in ${mode}; console:\n${logs.join('\n')}`);
    });
  return page;
}

/**
 * Runs test/browser/drive.ts in a child process and returns the page state it printed. Async:
 * the calling process serves the page, so it must not block while the browser loads it.
 */
export function drive(
  mode: Mode,
  pageUrl: string,
  shot: string,
  variant: string[] = [],
  timeoutMs = 150_000,
): Promise<unknown> {
  return runDriver('drive.ts', [mode, pageUrl, shot, ...variant], timeoutMs);
}

/** Runs a scenario of test/browser/drive-ux.ts (states, layout, adapter, first-open) and returns what it saw. */
export function driveUx(
  mode: Mode,
  pageUrl: string,
  scenario: string,
  artifacts: string,
  argsFile?: string,
  timeoutMs = 240_000,
): Promise<unknown> {
  return runDriver('drive-ux.ts', [mode, pageUrl, scenario, artifacts, ...(argsFile ? [argsFile] : [])], timeoutMs);
}

function runDriver(script: string, argv: string[], timeoutMs: number): Promise<unknown> {
  const mode = argv[0];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      '--import',
      'tsx',
      join(dirname(fileURLToPath(import.meta.url)), script),
      ...argv,
    ]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('@@STATE@@'));
      if (!line) reject(new Error(`browser run (${mode}) printed no state (exit ${code}):\n${out}\n${err}`));
      else resolve(JSON.parse(line.slice('@@STATE@@'.length)));
    });
  });
}
