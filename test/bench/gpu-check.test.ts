// `npm run gpu-check` end to end at the smallest sizes on this machine's adapter, so a run on a
// borrowed GPU (minutes of device time) does not die on a bug a CPU driver would have shown.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './gpu-check.ts';

describe('gpu-check', () => {
  it('reports the adapter, passes every kernel check, times every section and writes JSON + Markdown', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gpu-check-'));
    const r = await main([
      '--out',
      out,
      '--max',
      '512',
      '--conv',
      '4',
      '--attn-len',
      '9',
      '--eva-size',
      '32',
      '--eva-batch',
      '1',
      '--pvt-size',
      '64',
      '--pvt-batch',
      '1',
      '--steps',
      '1',
    ]);
    expect(r).toBeDefined();
    expect(r!.features).toContain('timestamp-query');
    expect(Object.keys(r!.limits)).toContain('maxStorageBufferBindingSize');
    const paths = new Set(r!.checks.map((c) => c.path));
    for (const p of [
      'matmul naive',
      'matmul blocked',
      'matmul tiled',
      'conv2d direct',
      'conv2d tiled',
      'attention training fused',
      'attention training unfused',
      'softmax, log_softmax, layer_norm, one invocation per row',
      'token-major ops vs their compositions, attention fused',
      'token-major ops vs their compositions, attention unfused',
    ]) {
      expect(paths).toContain(p);
    }
    expect(r!.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r!.timings.map((t) => t.what.split(' ')[0])).toEqual([
      'matmul',
      'conv2d',
      'attention',
      'attention',
      'EVA-02-Ti',
      'Polyp-PVT-b2',
    ]);
    for (const t of r!.timings) expect(Number.isFinite(t.ms), `${t.what}: ${t.note}`).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'gpu-check.json'), 'utf8'));
    expect(json.checks.length).toBe(r!.checks.length);
    expect(readFileSync(join(out, 'gpu-check.md'), 'utf8')).toMatch(/\| matmul tiled \| 5 \| 5 \|/);
  }, 600_000);
});
