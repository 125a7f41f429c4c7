// A stage's stamp key hashes its own code: the script and the sibling modules it imports, so an edit
// to a split recipe's part (e.g. cam-train.ts) redoes the stage, and an unrelated file does not.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeHash } from '../../recipes/endoked/pipeline.ts';

describe('codeHash', () => {
  it('follows sibling imports transitively (a module importing itself included) and nothing else', () => {
    const d = mkdtempSync(join(tmpdir(), 'codehash-'));
    const put = (f: string, s: string) => writeFileSync(join(d, f), s);
    const head = "import { a } from './stage-a.ts';\nimport type { T } from './01-stage.ts';\n";
    put('01-stage.ts', head + "import {\n  x,\n} from '../../engine/index.ts';\n");
    put('stage-a.ts', "export { b } from './stage-b.ts';\nexport const a = 1;\n");
    put('stage-b.ts', 'export const b = 2;\n');
    put('other.ts', 'export const c = 3;\n');
    const h0 = codeHash(join(d, '01-stage.ts'));
    expect(h0).toMatch(/^[0-9a-f]{64}$/);
    put('other.ts', 'export const c = 4;\n');
    expect(codeHash(join(d, '01-stage.ts'))).toBe(h0);
    put('stage-b.ts', 'export const b = 5;\n');
    const h1 = codeHash(join(d, '01-stage.ts'));
    expect(h1).not.toBe(h0);
    put('01-stage.ts', head + '// edited\n');
    expect(codeHash(join(d, '01-stage.ts'))).not.toBe(h1);
  });
});
