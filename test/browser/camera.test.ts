// Camera mode in real Chromium (both WebGPU modes) with Chromium's fake camera (a moving test
// pattern, 640x480): the default trained segmenter runs frame after frame, each frame's mask is
// shown as it finishes, the frames per second are shown, and Stop ends the loop and the camera.
// Writes the measured frames per second to test/artifacts/camera-<mode>.json.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve, MODELS_DIR } from '../../runtime-browser/serve.ts';
import { MODES, driveUx, type Mode } from './harness.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
let server: Server;
let url: string;

beforeAll(async () => {
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-camera'));
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ server, url } = await serve([outDir, MODELS_DIR]));
}, 120_000);
afterAll(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

interface Snap {
  state: {
    camera: {
      running: boolean;
      frames: number;
      fps: number;
      width: number;
      height: number;
      error: string | null;
    } | null;
    busy: boolean;
    result: { kind: string; for: { image: string } } | null;
    outcomes: { failed: number };
    featureLevel: string;
  };
  resultShown: boolean;
  fpsText: string;
  button: string;
}

describe('camera mode', () => {
  for (const mode of Object.keys(MODES) as Mode[]) {
    it(`segments the live camera frame after frame and stops (${mode})`, async () => {
      const out = (await driveUx(mode, url + MODES[mode].query, 'camera', ARTIFACTS, undefined, 280_000)) as {
        live: Snap;
        stopped: Snap;
        pageErrors: string[];
      };
      expect(out.pageErrors).toEqual([]);
      const cam = out.live.state.camera!;
      expect(cam).toMatchObject({ running: true, width: 640, height: 480, error: null });
      expect(cam.frames).toBeGreaterThanOrEqual(12);
      expect(cam.fps).toBeGreaterThan(0);
      expect(out.live.state.result?.kind).toBe('polyp-pvt');
      expect(out.live.state.result?.for.image).toMatch(/^camera frame \d+$/);
      expect(out.live.resultShown).toBe(true);
      expect(out.live.fpsText).toMatch(/^640×480, \d+\.\d frames\/s \(frame \d+\)$/);
      expect(out.live.button).toBe('Stop camera');
      expect(out.stopped.state.camera?.running).toBe(false);
      expect(out.stopped.state.busy).toBe(false);
      expect(out.stopped.button).toBe('Camera');
      expect(out.stopped.state.outcomes.failed).toBe(0);
      const report = {
        mode,
        featureLevel: out.live.state.featureLevel,
        frames: cam.frames,
        fpsOverLastTenFrames: cam.fps,
        frame: [cam.width, cam.height],
      };
      writeFileSync(join(ARTIFACTS, `camera-${mode}.json`), JSON.stringify(report, null, 2) + '\n');
      console.log(JSON.stringify(report));
    }, 300_000);
  }
});
