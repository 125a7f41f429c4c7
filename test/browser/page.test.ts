// The same engine and kernels in the browser: the page's outputs equal Node's.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve } from '../../runtime-browser/serve.ts';
import { selfCheck } from '../../runtime-browser/page/selfcheck.ts';
import { spawn } from 'node:child_process';
import { MODES, type Mode } from './harness.ts';
import { expectClose } from '../helpers.ts';

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
    const nodeOnly = js.match(/(from\s*["'](node:|fs|path|os|child_process|sharp|webgpu)["'])|require\(["'][^"']+["']\)|\bprocess\.env\b/g);
    expect(nodeOnly, 'Node-only references in the browser bundle').toBeNull();
    // The WGSL is the repository's, bundled once.
    expect(js).toContain('fn erf_f(x: f32)');
  });

  for (const mode of Object.keys(MODES) as Mode[]) {
    it(`runs the engine and matches Node (${mode})`, async () => {
      const state = await drive(mode, url, join(ARTIFACTS, `page-${mode}.png`)) as { status: string; error?: string; featureLevel: string; selfCheck: number[] };
      expect(state.error ?? '').toBe('');
      expect(state.status).toBe('ready');
      expect(state.featureLevel).toBe(mode === 'angle-compatibility' ? 'compatibility' : 'core');
      expectClose(state.selfCheck, await selfCheck(), `self-check in ${mode}`, 1e-5, 1e-4);
    });
  }

  it('says plainly when the browser has no WebGPU, without hanging', async () => {
    const state = await drive('swiftshader-core', url, join(ARTIFACTS, 'page-no-webgpu.png'), 'no-webgpu') as { status: string; statusText: string };
    expect(state.status).toBe('error');
    expect(state.statusText).toMatch(/does not expose WebGPU/);
    expect(state.statusText).toMatch(/--enable-unsafe-webgpu/);
  });
});

/**
 * Runs test/browser/drive.ts in a child process and returns the page state it printed. Async:
 * this process serves the page, so it must not block while the browser loads it.
 */
function drive(mode: Mode, pageUrl: string, shot: string, variant = ''): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'drive.ts'), mode, pageUrl, shot, variant]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('@@STATE@@'));
      if (!line) reject(new Error(`browser run (${mode}) printed no state (exit ${code}):\n${out}\n${err}`));
      else resolve(JSON.parse(line.slice('@@STATE@@'.length)));
    });
  });
}
