// The seeded synthetic datasets: determinism, exact masks, class balance, cue visibility, and
// report labels that a negation-aware keyword extractor can recover (and a naive one cannot).
import { describe, it, expect } from 'vitest';
import { rng } from '../../engine/data/index.ts';
import {
  CAPSULE_SOURCES,
  CE24_CLASSES,
  allocate,
  capsuleSet,
  polypSample,
  renderCapsule,
  renderColonoscopy,
  reportSet,
  sampleColonoscopyScene,
} from '../../runtime-node/synthetic/index.ts';
import { ruleLabel } from '../../engine/data/report-labels.ts';

const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

describe('synthetic colonoscopy frames', () => {
  it('are deterministic per (seed, index), whatever was generated before', () => {
    const a = polypSample(7, 5, { width: 96, height: 80 });
    for (let i = 0; i < 3; i++) polypSample(7, i, { width: 96, height: 80 });
    const b = polypSample(7, 5, { width: 96, height: 80 });
    expect(a.image.width).toBe(96);
    expect(a.image.height).toBe(80);
    expect(a.image.data.length).toBe(96 * 80 * 3);
    expect(equalBytes(a.image.data, b.image.data)).toBe(true);
    expect(equalBytes(a.mask.data, b.mask.data)).toBe(true);
    expect(equalBytes(a.image.data, polypSample(8, 5, { width: 96, height: 80 }).image.data)).toBe(false);
    expect(equalBytes(a.image.data, polypSample(7, 6, { width: 96, height: 80 }).image.data)).toBe(false);
  });

  it('masks are binary, non-empty exactly when polyps exist, and exactly the drawn region', () => {
    let withPolyps = 0;
    for (let i = 0; i < 24; i++) {
      const s = polypSample(11, i, { width: 72, height: 72 });
      const m = s.mask.data,
        area = sum(m);
      expect(m.every((v) => v === 0 || v === 1)).toBe(true);
      expect(area > 0).toBe(s.scene.polyps.length > 0);
      if (area > 0) withPolyps++;
      // The same scene without its polyps differs only inside the mask, and almost everywhere in it.
      const bare = renderColonoscopy({ ...s.scene, polyps: [] });
      expect(sum(bare.mask.data)).toBe(0);
      let outside = 0,
        inside = 0;
      for (let p = 0; p < m.length; p++) {
        const changed =
          s.image.data[3 * p] !== bare.image.data[3 * p] ||
          s.image.data[3 * p + 1] !== bare.image.data[3 * p + 1] ||
          s.image.data[3 * p + 2] !== bare.image.data[3 * p + 2];
        if (changed && !m[p]) outside++;
        if (changed && m[p]) inside++;
      }
      expect(outside, `frame ${i}: pixels changed by the polyps outside the mask`).toBe(0);
      if (area > 0) expect(inside / area, `frame ${i}: share of mask pixels the polyps changed`).toBeGreaterThan(0.9);
      expect(area / m.length).toBeLessThan(0.45);
    }
    expect(withPolyps).toBeGreaterThan(8);
  });

  it('about 70% of polyp-set frames have a polyp; polyp areas span 2%-25% of the frame', () => {
    let any = 0,
      two = 0;
    const n = 600;
    for (let i = 0; i < n; i++) {
      const scene = sampleColonoscopyScene(rng(3, 'polyp-set', i), { width: 256, height: 256 });
      if (scene.polyps.length > 0) any++;
      if (scene.polyps.length === 2) two++;
      for (const p of scene.polyps) {
        const r = p.blobs[0].r,
          lobulated = p.blobs.length > 1;
        const area = (Math.PI * (lobulated ? r / 0.8 : r) ** 2) / (256 * 256);
        expect(area).toBeGreaterThanOrEqual(0.02 - 1e-9);
        expect(area).toBeLessThanOrEqual(0.25 + 1e-9);
      }
    }
    expect(any / n).toBeGreaterThan(0.64);
    expect(any / n).toBeLessThan(0.76);
    expect(two / n).toBeGreaterThan(0.1);
    expect(two / n).toBeLessThan(0.2);
  });

  it('rejects a frame size that is too small', () => {
    expect(() => polypSample(0, 0, { width: 4, height: 4 })).toThrow(/too small/);
  });
});

describe('synthetic capsule frames', () => {
  it('allocate splits n by weight, with a floor per class', () => {
    expect(allocate(10, [1, 1, 2])).toEqual([3, 2, 5]);
    expect(allocate(20, [0.9, 0.05, 0.05], 2)).toEqual([16, 2, 2]);
    expect(allocate(2, [1, 1, 1], 1).reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('the set has CE24-like imbalance (normal ~70%, worms rarest) and every class', () => {
    const items = capsuleSet(1, { n: 2000, width: 32, height: 32 });
    expect(items.length).toBe(2000);
    const counts = CE24_CLASSES.map((c) => items.filter((i) => i.className === c).length);
    const normal = counts[CE24_CLASSES.indexOf('normal-mucosa')],
      worms = counts[CE24_CLASSES.indexOf('worms')];
    expect(Math.abs(normal / 2000 - 0.7)).toBeLessThan(0.01);
    expect(worms).toBeGreaterThan(0);
    expect(worms).toBe(Math.min(...counts));
    expect(counts[CE24_CLASSES.indexOf('erosion')]).toBe(Math.max(...counts.filter((c) => c !== normal)));
    // Small sets still hold every class.
    const small = capsuleSet(2, { n: 20 });
    expect(new Set(small.map((i) => i.className)).size).toBe(10);
  });

  it('patients hold several frames; original labels map back to the class', () => {
    const items = capsuleSet(4, { n: 300, framesPerPatient: [3, 12] });
    const perPatient = new Map<string, number>();
    for (const it of items) {
      perPatient.set(it.patientId, (perPatient.get(it.patientId) ?? 0) + 1);
      expect(CAPSULE_SOURCES[it.dataset][it.originalClass]).toBe(it.className);
      expect(it.label).toBe(CE24_CLASSES.indexOf(it.className));
      expect(it.patientId.startsWith(it.dataset)).toBe(true);
    }
    const sizes = [...perPatient.values()];
    expect(sizes.slice(0, -1).every((s) => s >= 3 && s <= 12)).toBe(true);
    expect(new Set(items.map((i) => i.fileName)).size).toBe(items.length);
    expect(JSON.stringify(capsuleSet(4, { n: 300 }))).toBe(JSON.stringify(capsuleSet(4, { n: 300 })));
  });

  it('renders a circular field of view, deterministically, at small sizes', () => {
    const scene = { seed: 9, width: 64, height: 64, label: 0, tone: 0.3 };
    const a = renderCapsule(scene),
      b = renderCapsule(scene);
    expect(equalBytes(a.data, b.data)).toBe(true);
    expect(Array.from(a.data.subarray(0, 3))).toEqual([0, 0, 0]); // corner
    const c = 3 * (32 * 64 + 32);
    expect(a.data[c] + a.data[c + 1] + a.data[c + 2]).toBeGreaterThan(150); // centre is lit
  });

  it("each class's cue changes the frame relative to normal mucosa", () => {
    const normal = CE24_CLASSES.indexOf('normal-mucosa');
    for (const seed of [21, 22]) {
      const base = renderCapsule({ seed, width: 96, height: 96, label: normal, tone: 0.5 });
      for (let k = 0; k < CE24_CLASSES.length; k++) {
        if (k === normal) continue;
        const img = renderCapsule({ seed, width: 96, height: 96, label: k, tone: 0.5 });
        let changed = 0;
        for (let p = 0; p < 96 * 96; p++) {
          const d =
            Math.abs(img.data[3 * p] - base.data[3 * p]) +
            Math.abs(img.data[3 * p + 1] - base.data[3 * p + 1]) +
            Math.abs(img.data[3 * p + 2] - base.data[3 * p + 2]);
          if (d > 30) changed++;
        }
        expect(changed, `${CE24_CLASSES[k]} (seed ${seed}): pixels that differ from normal`).toBeGreaterThan(15);
      }
    }
  });
});

// The negation-aware rule labeller (engine/data/report-labels.ts): the stand-in for EndoKED's
// report labeller (spec §2.1); its best binary guess where it says 'uncertain'.
const extractLabel = (report: string): 0 | 1 => ruleLabel(report).guess;
const naiveLabel = (report: string): 0 | 1 => (/polyp/i.test(report) ? 1 : 0);

describe('synthetic patients and reports', () => {
  const cases = reportSet(5, { patients: 300, width: 32, height: 32 });

  it('labels agree with the frames and the findings', () => {
    expect(cases.length).toBe(300);
    const pos = cases.filter((c) => c.label === 1).length;
    expect(pos).toBeGreaterThan(120);
    expect(pos).toBeLessThan(180);
    for (const c of cases) {
      const polypFrames = c.frames.filter((f) => f.polyp);
      expect(c.frames.length).toBeGreaterThanOrEqual(4);
      expect(c.frames.length).toBeLessThanOrEqual(16);
      expect(polypFrames.length > 0).toBe(c.label === 1);
      expect(c.frames.every((f) => f.scene.polyps.length > 0 === f.polyp)).toBe(true);
      expect(c.findings.length > 0).toBe(c.label === 1);
      for (const f of c.findings) expect(f.sizeMm).toBeGreaterThan(0);
      if (c.label === 1 && c.certain) expect(c.findings.some((f) => f.certain)).toBe(true);
    }
    expect(new Set(cases.map((c) => c.report)).size).toBeGreaterThan(290); // varied text
    expect(cases.some((c) => !c.certain)).toBe(true);
  });

  it('uses negations, hedges, sizes in mm and several segments', () => {
    const all = cases.map((c) => c.report).join('\n');
    for (const re of [
      /No polyps were seen/,
      /[Pp]ossible small polyp/,
      /\d+ ?-?mm/,
      /caecum|cecum/,
      /sigmoid/,
      /rectum/,
      /transverse/,
      /ascending|right colon/,
      /descending|left colon/,
    ]) {
      expect(all).toMatch(re);
    }
  });

  it('a negation-aware regex labeller recovers the labels (>90%); a naive keyword match does not', () => {
    const acc = (f: (r: string) => 0 | 1) => cases.filter((c) => f(c.report) === c.label).length / cases.length;
    expect(acc(extractLabel)).toBeGreaterThan(0.9);
    expect(acc(naiveLabel)).toBeLessThan(0.75);
  });

  it('is deterministic', () => {
    const again = reportSet(5, { patients: 20, width: 32, height: 32 });
    expect(again.map((c) => c.report)).toEqual(cases.slice(0, 20).map((c) => c.report));
  });
});
