// The bundle, and the page without WebGPU. The page in both WebGPU modes (self-check, models,
// errors) is driven by inference.test.ts, which also checks the self-check against Node.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { buildBrowser, TRAINING_ONLY } from '../../runtime-browser/build.ts';
import { serve } from '../../runtime-browser/serve.ts';
import { drive } from './harness.ts';

let server: Server;
let url: string;
let outDir: string;
const ARTIFACTS = join(__dirname, '..', 'artifacts');

beforeAll(async () => {
  outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test'));
  ({ server, url } = await serve([outDir]));
  mkdirSync(ARTIFACTS, { recursive: true });
});
afterAll(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

describe('in-browser page', () => {
  it('the bundle contains no Node-only module', () => {
    const js = readFileSync(join(outDir, 'app.js'), 'utf8');
    const nodeOnly = js.match(
      /(from\s*["'](node:|fs|path|os|child_process|sharp|webgpu)["'])|require\(["'][^"']+["']\)|\bprocess\.env\b/g,
    );
    expect(nodeOnly, 'Node-only references in the browser bundle').toBeNull();
    // The WGSL is the repository's, bundled once, without the kernels of training alone (backward
    // passes, optimizers, augmentation, losses): the page runs models forward only.
    expect(js).toContain('fn erf_f(x: f32)');
    const shaders = readdirSync(join(__dirname, '..', '..', 'shaders')).map((f) => f.slice(0, -5));
    const dropped = shaders.filter((n) => TRAINING_ONLY.test(n));
    expect(dropped).toEqual(
      expect.arrayContaining(['optim-adam', 'softmax-backward', 'cross-entropy', 'augment-warp']),
    );
    for (const n of shaders) expect(js.includes(`"${n}":`), n).toBe(!dropped.includes(n));
    // The sample images are bundled, each small.
    const samples = JSON.parse(readFileSync(join(outDir, 'samples', 'index.json'), 'utf8')) as {
      file: string;
      kind: string;
    }[];
    expect(new Set(samples.map((s) => s.kind))).toEqual(new Set(['capsule', 'colonoscopy']));
    for (const s of samples) expect(statSync(join(outDir, 'samples', s.file)).size, s.file).toBeLessThan(30_000);
  });

  it('says plainly when the browser has no WebGPU, without hanging', async () => {
    const state = (await drive('swiftshader-core', url, join(ARTIFACTS, 'page-no-webgpu.png'), ['no-webgpu'])) as {
      status: string;
      statusText: string;
    };
    expect(state.status).toBe('error');
    expect(state.statusText).toMatch(/does not expose WebGPU/);
    expect(state.statusText).toMatch(/--enable-unsafe-webgpu/);
  });
});
