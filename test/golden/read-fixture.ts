// Reads a golden fixture written by test/golden/common.py: fixtures/<family>.json is the tree
// (pretty-printed, so a regeneration diffs line by line) with {"$tensor": name} where a long list
// of numbers was, and fixtures/<family>.safetensors holds those lists (I32, F32 or F64, chosen so
// that every number comes back exactly as the generator wrote it). The lists come back as plain
// number arrays, as in the tree the generator built.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, type SafetensorsTensor } from '../../engine/index.ts';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export function readFixture<T = unknown>(family: string): T {
  const index = join(FIXTURES, `${family}.json`),
    numbers = join(FIXTURES, `${family}.safetensors`);
  for (const p of [index, numbers]) {
    if (!existsSync(p)) throw new Error(`missing fixture ${p}: run npm run golden -- ${family} (needs python3-torch)`);
  }
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(numbers)));
  const used = new Set<string>();
  const fill = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(fill);
    if (x === null || typeof x !== 'object') return x;
    const ref = (x as { $tensor?: unknown }).$tensor;
    if (typeof ref === 'string') {
      const t: SafetensorsTensor | undefined = tensors[ref];
      if (!t)
        throw new Error(
          `${index}: tensor '${ref}' is not in ${numbers} (regenerate both: npm run golden -- ${family})`,
        );
      used.add(ref);
      return Array.from(t.data as ArrayLike<number>);
    }
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, fill(v)]));
  };
  const tree = fill(JSON.parse(readFileSync(index, 'utf8')));
  const extra = Object.keys(tensors).filter((k) => !used.has(k));
  if (extra.length)
    throw new Error(
      `${numbers}: ${extra.length} tensor(s) the index does not use ` +
        `(${extra.slice(0, 3).join(', ')}): regenerate both (npm run golden -- ${family})`,
    );
  return tree as T;
}
