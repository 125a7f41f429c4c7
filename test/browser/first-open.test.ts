// The page as a fresh clone serves it (`npm run demo`: the bundle and the committed models in
// runtime-browser/models/, nothing under out/ or runs/), opened with no query string in both
// Chromium modes and a fresh profile: the default trained model loads by itself and its mask of
// the sample shows with the model card; the adapter is chosen by measurement on the first visit
// (where two adapters are offered) and remembered on the second. Writes the time from navigation
// to the first result per visit to test/artifacts/first-open-<mode>.json, with screenshots.
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
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-first-open'));
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ server, url } = await serve([outDir, MODELS_DIR]));
}, 120_000);
afterAll(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

interface Visit {
  firstResultMs: number;
  state: {
    featureLevel: string;
    cpuFallback: boolean | null;
    renderer?: string;
    adapterChoice: { how: string; measured?: Record<string, number> };
    model: { source: string; untrained: boolean; card: { title: string } | null } | null;
    result: { kind: string; for: { image: string }; maskArea: number } | null;
    resultError: string | null;
    modelError: string | null;
  };
  resultShown: boolean;
  modelInfo: string;
  options: string[];
  device: string;
  adapterHow: string;
}

describe('first open of a fresh clone', () => {
  for (const mode of Object.keys(MODES) as Mode[]) {
    it(`shows the default trained model's result at once, on the measured adapter (${mode})`, async () => {
      const out = (await driveUx(mode, url, 'first-open', ARTIFACTS)) as {
        first: Visit;
        again: Visit;
        pageErrors: string[];
      };
      expect(out.pageErrors).toEqual([]);
      for (const v of [out.first, out.again]) {
        expect(v.state.modelError).toBeNull();
        expect(v.state.resultError).toBeNull();
        expect(v.state.model).toMatchObject({ source: '/polyp-pvt-mu-kvasir.safetensors', untrained: false });
        expect(v.state.result?.kind).toBe('polyp-pvt');
        expect(v.state.result?.for.image).toBe('Colonoscopy: polyp');
        expect(v.resultShown).toBe(true);
        expect(v.modelInfo).toMatch(/Model card: Polyp-PVT-µ, Kvasir-SEG/);
        expect(v.modelInfo).toMatch(/test Dice0\.418/);
        expect(v.modelInfo).toMatch(/npx tsx recipes\/endoked\/05-segmenter\.ts/);
        // The trained models head the list; nothing in it is untrained.
        expect(v.options.slice(1, 3).map((o) => o.split(' · ')[0])).toEqual([
          'Polyp-PVT-µ, Kvasir-SEG (16 min on CPU)',
          'EVA-02-µ, capsule bleeding (MIM + 2 epochs)',
        ]);
        expect(v.options.some((o) => /untrained/.test(o))).toBe(false);
      }
      // SwiftShader names itself: a CPU fallback, and the page says so. Without developer features
      // Chromium's compatibility adapter over ANGLE discloses nothing (and this headless mode has
      // no WebGL to ask), so the page says it cannot tell.
      const chosen = out.first.state.featureLevel;
      if (chosen === 'core') {
        expect(out.first.state.cpuFallback).toBe(true);
        expect(out.first.device).toMatch(/^google swiftshader — core feature level CPU fallback$/);
      } else {
        expect(out.first.state.cpuFallback).toBeNull();
        expect(out.first.device).toMatch(
          /^adapter not disclosed by the browser — compatibility feature level CPU or GPU: not disclosed$/,
        );
        expect(out.first.adapterHow).toMatch(/it may be a CPU implementation\.$/);
      }
      const c1 = out.first.state.adapterChoice,
        c2 = out.again.state.adapterChoice;
      if (mode === 'angle-compatibility') {
        // Two adapters (SwiftShader core, ANGLE compatibility): measured once, the faster kept, then remembered.
        expect(c1.how).toBe('measured');
        const m = c1.measured!;
        expect(out.first.state.featureLevel).toBe(m.compatibility < m.core ? 'compatibility' : 'core');
        expect(c2).toEqual({ ...c1, how: 'remembered' });
        expect(out.again.state.featureLevel).toBe(out.first.state.featureLevel);
        expect(out.first.adapterHow).toMatch(/^Chosen: measured now: core [\d.]+ ms, compatibility [\d.]+ ms/);
        expect(out.again.adapterHow).toMatch(/^Chosen: measured on an earlier visit/);
      } else {
        expect(c1.how).toBe('same adapter');
        expect(out.first.state.featureLevel).toBe('core');
      }
      const report = {
        mode,
        device: out.first.device,
        choice: c1,
        featureLevel: out.first.state.featureLevel,
        firstVisitFirstResultMs: out.first.firstResultMs,
        secondVisitFirstResultMs: out.again.firstResultMs,
      };
      writeFileSync(join(ARTIFACTS, `first-open-${mode}.json`), JSON.stringify(report, null, 2) + '\n');
      console.log(JSON.stringify(report));
    }, 300_000);
  }
});
