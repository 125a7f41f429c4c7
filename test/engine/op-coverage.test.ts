// Every public op (a function engine/ops/index.ts exports) has a golden or finite-difference case:
// its name is used in a test file that runs checkGolden or checkFiniteDifferences. An op without
// one fails here unless WAIVED says why. A waiver for an op that has a case fails too, so the
// list stays true.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ops from '../../engine/ops/index.ts';
import { filesUnder } from '../helpers.ts';

const WAIVED: Record<string, string> = {
  broadcastShapes: 'a shape helper, not an op (engine/shape.ts); every broadcasting golden goes through it',
  stridedCopy: 'the copy kernel behind clone, conv weight flips and the movement ops, whose cases cover it',
  stridedWrite: 'the write kernel behind cat and conv weight packing, whose goldens cover it',
  chooseConvKernel: 'picks a kernel for a conv geometry; conv.test.ts checks every kernel against the goldens',
};

describe('op coverage', () => {
  it('every public op has a golden or finite-difference case, or a waiver with its reason', () => {
    const root = join(__dirname, '..');
    const withCases = filesUnder(root, '.test.ts')
      .map((f) => readFileSync(f, 'utf8'))
      .filter((src) => /\b(checkGolden|checkFiniteDifferences)\(/.test(src))
      .map((src) => src.replace(/^import[\s\S]*?from\s+'[^']+';/gm, '')); // an import alone is no case
    const publicOps = Object.entries(ops)
      .filter(([, v]) => typeof v === 'function' && !/^[A-Z]/.test(v.name))
      .map(([k]) => k);
    expect(publicOps.length).toBeGreaterThan(80);
    const covered = (name: string) => withCases.some((src) => new RegExp(`\\b${name}\\b`).test(src));
    expect(
      publicOps.filter((n) => !covered(n) && !(n in WAIVED)),
      'public ops with no golden or finite-difference case',
    ).toEqual([]);
    expect(
      Object.keys(WAIVED).filter((n) => covered(n) || !publicOps.includes(n)),
      'waivers that are no longer needed',
    ).toEqual([]);
  });
});
