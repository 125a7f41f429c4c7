// What the server offers the page (runtime-browser/serve.ts `catalog`, page/catalog.ts): each
// .safetensors file described from its header; pre-training checkpoints, bare SAM decoders and
// non-safetensors files left out; untrained checkpoints flagged; model cards checked against their
// file (size and sha256); the committed trained models (runtime-browser/models/) each with a
// valid card, small, loadable, and the default first.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { weightsBytes } from '../../engine/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { SamPromptDecoder } from '../../models/sam-decoder.ts';
import { FEATURE_CHANNELS } from '../../models/polyp-pvt.ts';
import { catalog, MODELS_DIR } from '../../runtime-browser/serve.ts';
import { writeDemoCheckpoints } from '../../runtime-browser/make-demo-assets.ts';
import { samConfigForSize } from '../../runtime-browser/page/endoked.ts';
import { loadCheckpoint, readHeader } from '../../runtime-browser/page/infer.ts';
import { checkCard, describeHeader, entryLabel } from '../../runtime-browser/page/catalog.ts';
import { initNode } from '../../runtime-node/index.ts';

let dir: string;
beforeAll(async () => {
  await initNode();
  dir = mkdtempSync(join(tmpdir(), 'catalog-'));
  await writeDemoCheckpoints(dir);
  const mimCfg = eva02Config('mu', { numClasses: 0 }),
    mim = new Eva02(mimCfg);
  writeFileSync(
    join(dir, 'mim.safetensors'),
    await weightsBytes(mim, { config: JSON.stringify(mimCfg), stage: 'mim' }),
  );
  mim.dispose();
  const dec = new SamPromptDecoder(samConfigForSize(128), { neckInChans: FEATURE_CHANNELS });
  writeFileSync(join(dir, 'sam-decoder-alone.safetensors'), await weightsBytes(dec));
  dec.dispose();
  writeFileSync(join(dir, 'broken.safetensors'), 'not safetensors at all');
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('checkpoint catalog', () => {
  it('lists servable models only, untrained ones flagged and labelled', () => {
    const list = catalog([dir]);
    expect(list.map((e) => e.url)).toEqual(['/eva02-mu-demo.safetensors', '/polyp-pvt-mu-demo.safetensors']);
    expect(list.map((e) => [e.kind, e.untrained])).toEqual([
      ['eva02', true],
      ['polyp-pvt', true],
    ]);
    for (const e of list) expect(entryLabel(e, (n) => `${n} B`)).toMatch(/ · untrained \(random weights\) · \d+ B$/);
    const why = (f: string) => describeHeader(readHeader(new Uint8Array(readFileSync(join(dir, f)))));
    expect(why('mim.safetensors')).toEqual({
      skip: 'an EVA-02 without a classification head (a pre-training checkpoint)',
    });
    expect(why('sam-decoder-alone.safetensors')).toMatchObject({
      skip: expect.stringMatching(/^a SAM decoder without its image backbone/),
    });
    expect(why('broken.safetensors')).toEqual({ skip: 'not a readable safetensors file' });
  });

  it('attaches a card that matches its file, reports one that does not, and puts the default first', () => {
    const f = join(dir, 'polyp-pvt-mu-demo.safetensors'),
      bytes = statSync(f).size;
    const card = {
      title: 'T',
      task: 'polyp segmentation',
      trainedOn: 'x',
      command: 'npx tsx x',
      scores: { dice: 0.5 },
      scoresOn: 'test',
      bytes,
      sha256: sha256(f),
      date: '2026-01-01',
      default: true,
    };
    writeFileSync(join(dir, 'polyp-pvt-mu-demo.card.json'), JSON.stringify(card));
    writeFileSync(join(dir, 'eva02-mu-demo.card.json'), JSON.stringify({ ...card, bytes: 1 }));
    const list = catalog([dir]);
    expect(list[0].url).toBe('/polyp-pvt-mu-demo.safetensors');
    expect(list[0].card).toEqual(card);
    expect(list[1].card).toBeUndefined();
    expect(list[1].cardError).toMatch(/eva02-mu-demo\.card\.json: "bytes" is 1, the checkpoint has \d+/);
    writeFileSync(join(dir, 'polyp-pvt-mu-demo.card.json'), JSON.stringify({ ...card, sha256: '0'.repeat(64) }));
    expect(catalog([dir])[1].cardError).toMatch(/"sha256" is 0{64}, the checkpoint's is [0-9a-f]{64}/);
    expect(() => checkCard({ ...card, command: '' }, bytes)).toThrow(/"command" must be a non-empty string/);
  });
});

describe('committed trained models (runtime-browser/models)', () => {
  const files = existsSync(MODELS_DIR) ? readdirSync(MODELS_DIR).filter((f) => f.endsWith('.safetensors')) : [];

  it('there is at least one, each small, trained, with a valid card, and one default', () => {
    expect(files.length).toBeGreaterThan(0);
    const list = catalog([MODELS_DIR]);
    expect(list.map((e) => e.url).sort()).toEqual(files.map((f) => '/' + f).sort());
    for (const e of list) {
      expect(e.cardError, e.url).toBeUndefined();
      expect(e.card, e.url).toBeDefined();
      expect(e.untrained, e.url).toBe(false);
      expect(e.bytes, e.url).toBeLessThan(5 << 20);
    }
    expect(list.filter((e) => e.card?.default).length).toBe(1);
    expect(list[0].card?.default).toBe(true);
  });

  it('each loads into the model its metadata names', () => {
    for (const f of files) {
      const m = loadCheckpoint(readFileSync(join(MODELS_DIR, f)), { source: f });
      expect(m.notes, f).toEqual([]);
      m.model.dispose();
    }
  });
});
