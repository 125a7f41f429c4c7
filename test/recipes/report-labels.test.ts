// Stage 1 end to end (recipes/endoked/01-report-labels.ts): a small synthetic patient set ->
// labels.csv + metrics.json; a hand-written CSV with RFC 4180 quoting and Chinese reports and no
// truth (labels, no metrics); the LLM extractor through the CLI against a local HTTP server; and
// the command-line errors.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsvTable, serialiseCsv } from '../../engine/data/index.ts';
import { ruleLabel } from '../../engine/data/report-labels.ts';
import { main as buildSet } from '../../recipes/endoked/00-patient-set.ts';
import { main } from '../../recipes/endoked/01-report-labels.ts';

async function quiet<T>(f: () => Promise<T>): Promise<{ value: T; log: string }> {
  const lines: string[] = [],
    log = console.log;
  console.log = (...a: unknown[]) => {
    lines.push(a.join(' '));
  };
  try {
    return { value: await f(), log: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

describe('01-report-labels CLI', () => {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'report-labels-'));
    await quiet(() => buildSet(['--out', join(dir, 'set'), '--patients', '40', '--size', '16', '--seed', '4']));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('labels a synthetic patient set: labels.csv per contract, metrics.json with the confusion table', async () => {
    const out = join(dir, 'out');
    const { log } = await quiet(() => main(['--reports', join(dir, 'set', 'reports.csv'), '--out', out]));
    const reports = parseCsvTable(readFileSync(join(dir, 'set', 'reports.csv'), 'utf8'), 'reports.csv').rows;
    const { header, rows } = parseCsvTable(readFileSync(join(out, 'labels.csv'), 'utf8'), 'labels.csv');
    expect(header).toEqual(['patient_id', 'label', 'evidence']);
    expect(rows.map((r) => r.patient_id)).toEqual(reports.map((r) => r.patient_id));
    for (const [k, r] of rows.entries()) {
      expect(['0', '1', 'uncertain']).toContain(r.label);
      const d = ruleLabel(reports[k].report);
      expect([r.label, r.evidence]).toEqual([String(d.label), d.evidence]);
      if (r.label !== '0') expect(reports[k].report).toContain(r.evidence); // a phrase of the report
    }
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(m.n).toBe(40);
    const c = m.confusion;
    expect(c['0']['0'] + c['0']['1'] + c['0'].uncertain + c['1']['0'] + c['1']['1'] + c['1'].uncertain).toBe(40);
    expect(m.accuracy).toBe(1); // every phrasing of the generator is handled
    expect(m.uncertainMatch.both).toBe(m.uncertainMatch.truthUncertain);
    expect(Object.keys(m.groups).sort()).toEqual(['centre=synthetic', 'split=test', 'split=train']);
    expect(m.baselines.naiveKeyword.accuracy).toBeLessThan(0.8);
    expect(log).toMatch(/pred 0 pred 1  uncertain\ntruth 0 +\d+ +0 +\d+\ntruth 1 +0 +\d+ +\d+/);
  });

  it('a CSV without truth: RFC 4180 quoting, Chinese, extra columns ignored; no metrics', async () => {
    const csv = join(dir, 'free.csv'),
      out = join(dir, 'free-out');
    writeFileSync(
      csv,
      serialiseCsv([
        ['patient_id', 'report', 'ward'],
        ['a1', 'Findings: "two polyps", 4 mm and 6 mm,\nboth removed.', 'x'],
        ['a2', '进镜至回盲部，未见息肉。', 'y'],
        ['a3', 'Possible polyp, see histology.', ''],
      ]),
    );
    await quiet(() => main(['--reports', csv, '--out', out]));
    const rows = parseCsvTable(readFileSync(join(out, 'labels.csv'), 'utf8'), 'labels.csv').rows;
    expect(rows.map((r) => [r.patient_id, r.label])).toEqual([
      ['a1', '1'],
      ['a2', '0'],
      ['a3', 'uncertain'],
    ]);
    expect(rows[1].evidence).toBe('未见息肉');
    expect(existsSync(join(out, 'metrics.json'))).toBe(false);
  });

  it('--extractor llm through the CLI against a local chat-completions server', async () => {
    // The server answers with the rule labeller's decision for the report it receives.
    let calls = 0;
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        calls++;
        const report = (JSON.parse(body).messages[1].content as string).replace(/^Report:\n/, '');
        const d = ruleLabel(report);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            choices: [
              { message: { role: 'assistant', content: JSON.stringify({ label: d.label, evidence: d.evidence }) } },
            ],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const out = join(dir, 'llm-out');
      await quiet(() =>
        main([
          '--reports',
          join(dir, 'set', 'reports.csv'),
          '--out',
          out,
          '--extractor',
          'llm',
          '--llm-url',
          url,
          '--llm-model',
          'm',
          '--concurrency',
          '4',
        ]),
      );
      expect(calls).toBe(40);
      expect(readFileSync(join(out, 'labels.csv'), 'utf8')).toBe(readFileSync(join(dir, 'out', 'labels.csv'), 'utf8'));
      expect(JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).extractor).toBe('llm:m');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('command-line errors name the flag and the fix', async () => {
    await expect(main(['--extractor', 'llm', '--reports', join(dir, 'set', 'reports.csv')])).rejects.toThrow(
      /--extractor llm needs --llm-url .* and --llm-model/,
    );
    await expect(main(['--reports', join(dir, 'none.csv')])).rejects.toThrow(
      /--reports ".*none\.csv" does not exist \(a CSV with columns patient_id,report\)/,
    );
    await expect(
      main([
        '--extractor',
        'llm',
        '--llm-url',
        'ftp://x',
        '--llm-model',
        'm',
        '--reports',
        join(dir, 'set', 'reports.csv'),
      ]),
    ).rejects.toThrow(/must be http:\/\/ or https:\/\//);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'patient,report\np1,x\n');
    await expect(main(['--reports', bad, '--out', join(dir, 'bad-out')])).rejects.toThrow(
      /bad\.csv: missing column\(s\) patient_id/,
    );
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await expect(
      quiet(() =>
        main([
          '--reports',
          join(dir, 'set', 'reports.csv'),
          '--out',
          join(dir, 'x'),
          '--extractor',
          'llm',
          '--llm-url',
          `http://127.0.0.1:${port}`,
          '--llm-model',
          'm',
          '--llm-retries',
          '0',
        ]),
      ),
    ).rejects.toThrow(new RegExp(`LLM endpoint http://127\\.0\\.0\\.1:${port}/v1/chat/completions is unreachable`));
  });
});
