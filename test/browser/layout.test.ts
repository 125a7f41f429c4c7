// The page's layout in real Chromium (both WebGPU modes) with a result on screen, at a phone
// (390 x 844), a tablet (820 x 1180) and a desktop (1280 x 800) viewport: full-page screenshots
// go to test/artifacts/layout-<mode>-<width>.png, and the test fails on horizontal overflow
// (document wider than the window) and on clipped or spilling text (an element whose content is
// wider than its box, scroll areas aside, or that reaches past the window's edges).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve, MODELS_DIR } from '../../runtime-browser/serve.ts';
import { writeDemoCheckpoints } from '../../runtime-browser/make-demo-assets.ts';
import { MODES, driveUx, type Mode } from './harness.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
let server: Server;
let url: string;
let tmp: string;

beforeAll(async () => {
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-layout'));
  tmp = mkdtempSync(join(tmpdir(), 'page-layout-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // The committed models (the default opens on its sample) and the untrained demo checkpoints,
  // whose long labels the checkpoint list must also fit.
  await writeDemoCheckpoints(join(tmp, 'demo'));
  writeFileSync(join(tmp, 'args.json'), JSON.stringify({}));
  ({ server, url } = await serve([outDir, MODELS_DIR, tmp]));
}, 120_000);
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('page layout from phone to desktop', () => {
  for (const mode of Object.keys(MODES) as Mode[]) {
    it(`no horizontal overflow or clipped text at 390, 820 and 1280 px (${mode})`, async () => {
      const out = (await driveUx(mode, url + MODES[mode].query, 'layout', ARTIFACTS, join(tmp, 'args.json'))) as Record<
        string,
        { problems: string[]; shot: string; resultShown: boolean }
      > & { pageErrors: string[] };
      expect(out.pageErrors).toEqual([]);
      for (const w of ['390', '820', '1280']) {
        expect(out[w].problems, `${mode} at ${w} px`).toEqual([]);
        expect(out[w].resultShown, `a result is on screen at ${w} px`).toBe(true);
        expect(existsSync(out[w].shot)).toBe(true);
      }
    }, 300_000);
  }
});
