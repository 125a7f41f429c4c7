// The page's states in real Chromium (SwiftShader, core feature level), driven as a user would
// (test/browser/drive-ux.ts `states`): a busy state while a request runs; picking another image
// clears the old result and its timings at once; rapid clicks coalesce to the last (the ones in
// between never run); a failed checkpoint load keeps the working model and its result; an image
// error belongs to its image and goes with the next one; untrained checkpoints say so in the list,
// the model summary and the result, and files that are no servable model are not listed.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { weightsBytes } from '../../engine/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { CE24_CLASSES } from '../../runtime-node/synthetic/index.ts';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve } from '../../runtime-browser/serve.ts';
import { writeDemoCheckpoints } from '../../runtime-browser/make-demo-assets.ts';
import { driveUx } from './harness.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
let server: Server;
let url: string;
let tmp: string;

beforeAll(async () => {
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-states'));
  tmp = mkdtempSync(join(tmpdir(), 'page-states-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  await writeDemoCheckpoints(tmp);
  // A pre-training checkpoint (no classification head), as the MIM stage writes it: not listed.
  const mimCfg = eva02Config('mu', { numClasses: 0 }),
    mim = new Eva02(mimCfg);
  writeFileSync(
    join(tmp, 'mim.safetensors'),
    await weightsBytes(mim, { config: JSON.stringify(mimCfg), stage: 'mim' }),
  );
  mim.dispose();
  writeFileSync(join(tmp, 'not-an-image.png'), 'this is text, not a PNG');
  writeFileSync(
    join(tmp, 'args.json'),
    JSON.stringify({
      pvt: '/polyp-pvt-mu-demo.safetensors',
      eva: '/eva02-mu-demo.safetensors',
      wrongKind: '/polyp-pvt-mu-demo.safetensors',
      notImage: join(tmp, 'not-an-image.png'),
    }),
  );
  ({ server, url } = await serve([outDir, tmp]));
}, 120_000);
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Snap {
  state: {
    busy: boolean;
    runs: number;
    outcomes: { done: number; failed: number; superseded: number };
    image: { name: string } | null;
    model: { source: string; untrained: boolean } | null;
    result: { kind: string; for: { image: string; model: string } } | null;
    resultError: string | null;
    modelError: string | null;
    imageError: string | null;
  };
  busyShown: boolean;
  resultBusy: boolean;
  resultShown: boolean;
  resultEmpty: string | null;
  timingsRun: string;
  timingsRunTitle: string;
  modelError: string | null;
  imageError: string | null;
  resultError: string | null;
  modelInfo: string;
  resultSide: string;
  options: string[];
}
interface Now {
  busy: boolean;
  result: unknown;
  busyShown: boolean;
  resultShown: boolean;
  resultEmpty: string;
  timingsRun: string;
}

describe('page states (swiftshader-core)', () => {
  it(
    'busy state, coalesced clicks, failed loads keep the model, results belong to their image, ' + 'untrained labelled',
    async () => {
      const out = (await driveUx('swiftshader-core', url, 'states', ARTIFACTS, join(tmp, 'args.json'))) as Record<
        string,
        Snap & Now
      > & { pageErrors: string[]; rapid: Snap & { runsDuring: number } };
      expect(out.pageErrors).toEqual([]);

      // The list: both demo checkpoints say they are untrained; the pre-training checkpoint is left out.
      const opts = out.ready.options;
      expect(
        opts
          .filter((o) => /polyp-pvt-mu-demo|eva02-mu-demo/.test(o))
          .every((o) => /untrained \(random weights\)/.test(o)),
      ).toBe(true);
      expect(opts.some((o) => /polyp-pvt-mu-demo/.test(o))).toBe(true);
      expect(opts.some((o) => /mim/.test(o))).toBe(false);

      // The first result, its timings and its untrained warning belong to the first image.
      const first = out.first;
      expect(first.state.result?.for.image).toBe('Colonoscopy: polyp');
      expect(first.resultShown).toBe(true);
      expect(first.timingsRunTitle).toBe('Image: Colonoscopy: polyp');
      expect(first.timingsRun).toMatch(/forward/);
      expect(first.modelInfo).toMatch(/Untrained \(random weights\)/);
      expect(first.resultSide).toMatch(/Untrained \(random weights\): this mask mean nothing/);
      expect(first.busyShown).toBe(false);

      // Another image: busy at once, the old mask and its timings gone before the new one exists.
      const now = out.switchNow;
      expect(now).toMatchObject({ busy: true, busyShown: true, result: null, resultShown: false, timingsRun: '' });
      expect(now.resultEmpty).toMatch(/on Colonoscopy: polyp \(2\)…$/);
      expect(out.switched.state.result?.for.image).toBe('Colonoscopy: polyp (2)');
      expect(out.switched.state.image?.name).toBe('Colonoscopy: polyp (2)');
      expect(out.switched.timingsRunTitle).toBe('Image: Colonoscopy: polyp (2)');

      // Four clicks in a row: only the last runs; the others are superseded, none is shown.
      expect(out.rapidNow).toMatchObject({ busy: true, busyShown: true, result: null, resultShown: false });
      expect(out.rapid.state.result?.for.image).toBe('Colonoscopy: polyp');
      expect(out.rapid.state.image?.name).toBe('Colonoscopy: polyp');
      expect(out.rapid.runsDuring).toBe(1);
      expect(out.rapid.state.outcomes.superseded - out.switched.state.outcomes.superseded).toBe(3);

      // Failed loads: the model, its result and the image stay; the error is shown.
      for (const [snap, error] of [
        [out.missing, /HTTP 404/],
        [out.wrongKind, /^This checkpoint does not fit the EVA-02 classifier/],
      ] as const) {
        expect(snap.state.model?.source).toBe('/polyp-pvt-mu-demo.safetensors');
        expect(snap.state.modelError).toMatch(error);
        expect(snap.modelError).not.toBeNull();
        expect(snap.resultShown).toBe(true);
        expect(snap.state.result?.for.image).toBe('Colonoscopy: polyp');
      }

      // An image that does not decode: its error, no result; the next image clears the error.
      expect(out.badImage.imageError).toMatch(/not-an-image\.png: cannot decode this image/);
      expect(out.badImage).toMatchObject({ resultShown: false, timingsRun: '' });
      expect(out.badImage.state.result).toBeNull();
      expect(out.afterBadImage.imageError).toBeNull();
      expect(out.afterBadImage.state.result?.for.image).toBe('Colonoscopy: polyp (2)');

      // The untrained classifier: labelled on its summary and its probabilities.
      expect(out.eva.state.result?.kind).toBe('eva02');
      expect(out.eva.state.model?.untrained).toBe(true);
      expect(out.eva.resultSide).toMatch(/Untrained \(random weights\): these probabilities and the map mean nothing/);
      expect(out.eva.state.outcomes.failed).toBe(0);
      // The map of any class: the caption names the chosen one, the top one at first.
      const top = (out.eva.state.result as unknown as { top: { name: string }[] }).top[0].name;
      expect((out.eva as unknown as { caption: string }).caption).toBe(
        `class activation of “${top}” on the 8×8 patch grid`,
      );
      expect((out.camClass as unknown as { caption: string }).caption).toBe(
        `class activation of “${CE24_CLASSES[3]}” on the 8×8 patch grid`,
      );
      expect((out.camClass.state as unknown as { view: { camClass: number } }).view.camClass).toBe(3);
    },
    300_000,
  );
});
