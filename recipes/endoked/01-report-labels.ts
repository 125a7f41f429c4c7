// EndoKED stage 1: report -> label (spec §2.1). EndoKED asks an LLM whether each patient's
// colonoscopy report describes a polyp and keeps the certain answers (label/label_certain.txt);
// its prompt and model are unpublished. Two labellers here, behind one interface
// (engine/data/report-labels.ts ReportLabeller):
//   --extractor rules  (default) the negation-, scope- and hedge-aware rule labeller for English
//                      and Chinese reports (engine/data/report-labels.ts)
//   --extractor llm    an OpenAI-compatible chat-completions server (--llm-url, --llm-model), e.g.
//                      llama.cpp's llama-server or Ollama (runtime-node/llm-labels.ts)
//
// Consumes: --reports FILE.csv with columns patient_id,report (RFC 4180, UTF-8; other columns are
//           ignored for labelling). Default: the synthetic patient set's reports.csv, built by
//           00-patient-set.ts when missing.
// Produces, in --out (default runs/endoked/01-report-labels):
//   labels.csv    patient_id,label,evidence   label 1 (polyp), 0 (none) or uncertain (stage 2
//                 leaves uncertain patients out of training); evidence = the deciding phrase
//   metrics.json  when the CSV has truth labels (a `label` column of 0/1, read only after
//                 labelling): accuracy, precision, recall, F1 on the decided reports, coverage,
//                 the confusion table (truth x {0, 1, uncertain}), how 'uncertain' matches the
//                 truth's `certain` column, per split and centre, and a naive keyword baseline
//
// Hard phrasings the rule labeller handles (each in test/data/report-labels.test.ts):
// - previous polypectomy with no recurrence, "history of adenomatous polyps", "Indication: polyp
//   surveillance", "s/p polypectomy" (history: not a finding) vs "recurrent polyp at the scar";
//   Chinese 息肉切除术后复查，未见复发, 既往息肉病史
// - "polypectomy not required" (names no finding; the polyp beside it still counts), "a polyp
//   could not be removed", "removed but not retrieved"; Chinese 无需切除
// - pseudo-findings: "a suspected polyp proved to be a fold", "turned out to be stool",
//   pseudopolyps; Chinese 假性息肉, 证实为皱襞; unconfirmed suspicions -> uncertain
// - negation scope: "No complications after removal of a 6 mm polyp" is a polyp, "No polyps in
//   the rectum, but a 4 mm polyp in the sigmoid", "No polyps except ..."; 无蒂息肉 (sessile) is a
//   polyp, 无糜烂的息肉 too
// - counts: "Two polyps", "Polyps x3", "多发息肉" vs "0 polyps", "Polyps: none", "Number of
//   polyps: 0" ("0.5 cm polyp" is a polyp)
// - abbreviations: SSL, SSA/P, TA, TVA, LST, EMR, "?polyp"
// - hedges: possible, probably, suspected, may be, cannot be excluded; 考虑, 可能, 疑似, 不除外
//
// Usage:
//   npx tsx recipes/endoked/01-report-labels.ts [--reports FILE.csv] [--out DIR]
//       [--extractor rules|llm] [--llm-url URL --llm-model NAME] [--llm-timeout S] [--llm-retries N]
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseCsvTable,
  serialiseCsv,
  formatConfusion,
  reportLabelMetrics,
  ruleLabeller,
  type ReportDecision,
  type ReportLabelMetrics,
  type ReportLabeller,
} from '../../engine/data/index.ts';
import { LlmLabeller, LlmUnreachable } from '../../runtime-node/llm-labels.ts';
import { writeAtomic } from '../../runtime-node/checkpoint.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';
import { main as buildPatientSet } from './00-patient-set.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const FLAGS = defineFlags(
  'recipes/endoked/01-report-labels.ts',
  'Report -> polyp label (1, 0 or uncertain) with the deciding phrase.',
  {
    reports: {
      type: 'string',
      help: 'CSV with patient_id,report (default: out/endoked/synthetic-set/reports.csv, built if missing)',
    },
    out: { type: 'string', help: 'output folder (default runs/endoked/01-report-labels in the repository)' },
    extractor: {
      type: 'string',
      default: 'rules',
      choices: ['rules', 'llm'],
      help: 'the rule labeller or an LLM server',
    },
    llmUrl: {
      type: 'string',
      help: 'OpenAI-compatible server, e.g. http://127.0.0.1:8080 (llama-server) or http://127.0.0.1:11434 (Ollama)',
    },
    llmModel: { type: 'string', help: 'model name sent to the server' },
    llmTimeout: { type: 'number', default: 60, min: 0, exclusiveMin: true, help: 'seconds per request' },
    llmRetries: {
      type: 'int',
      default: 3,
      min: 0,
      max: 10,
      help: 'retries per report (exponential backoff from 0.5 s)',
    },
    concurrency: {
      type: 'int',
      default: 1,
      min: 1,
      max: 64,
      help: 'reports labelled at once (LLM servers with parallel slots)',
    },
  },
);

/** Naive baseline: any mention of "polyp"/"息肉" is a polyp. */
const naive = (r: string): 0 | 1 => (/polyp|息肉/i.test(r) ? 1 : 0);

const utf8 = (s: string) => new TextEncoder().encode(s);

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : 'n/a';
}

function summary(name: string, m: ReportLabelMetrics): string {
  return (
    `${name}: n ${m.n}, decided ${m.decided} (coverage ${fmt(m.coverage)}), accuracy ` +
    `${fmt(m.accuracy)}, precision ${fmt(m.precision)}, recall ${fmt(m.recall)}, F1 ${fmt(m.f1)}, ` +
    `accuracy with guesses ${fmt(m.accuracyWithGuesses)}`
  );
}

export async function main(argv: string[]): Promise<{ out: string; metrics?: unknown }> {
  const f = FLAGS.parse(argv);
  if (!f) return { out: '' };
  let reportsPath: string;
  if (f.reports) {
    reportsPath = resolve(f.reports);
    if (!existsSync(reportsPath))
      throw new FlagError(
        `${FLAGS.script}: --reports "${reportsPath}" does not exist (a CSV with columns patient_id,report)`,
      );
  } else {
    reportsPath = join(ROOT, 'out', 'endoked', 'synthetic-set', 'reports.csv');
    if (!existsSync(reportsPath)) await buildPatientSet([]);
  }
  let labeller: ReportLabeller;
  if (f.extractor === 'llm') {
    if (!f.llmUrl || !f.llmModel)
      throw new FlagError(
        `${FLAGS.script}: --extractor llm needs --llm-url (e.g. http://127.0.0.1:8080) and --llm-model`,
      );
    try {
      labeller = new LlmLabeller({
        url: f.llmUrl,
        model: f.llmModel,
        timeoutMs: f.llmTimeout * 1000,
        retries: f.llmRetries,
      });
    } catch (e) {
      throw new FlagError(`${FLAGS.script}: ${(e as Error).message}`);
    }
  } else labeller = ruleLabeller;

  const { header, rows } = parseCsvTable(readFileSync(reportsPath, 'utf8'), reportsPath, ['patient_id', 'report']);
  if (rows.length === 0) throw new Error(`${reportsPath}: no reports`);
  const seen = new Set<string>();
  rows.forEach((r, k) => {
    const id = r.patient_id.trim();
    if (!id) throw new Error(`${reportsPath}: row ${k + 1}: empty patient_id`);
    if (seen.has(id)) throw new Error(`${reportsPath}: row ${k + 1}: patient "${id}" listed twice`);
    seen.add(id);
  });
  const out = f.out ? resolve(f.out) : join(ROOT, 'runs', 'endoked', '01-report-labels');
  mkdirSync(out, { recursive: true });
  console.log(`labelling ${rows.length} reports from ${reportsPath} with ${labeller.name}`);

  // Label every report (in order; `concurrency` at a time). Truth columns are not read here.
  const t0 = Date.now(),
    decisions: ReportDecision[] = new Array(rows.length);
  const bar = new Progress({ total: rows.length, label: 'reports' });
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(f.concurrency, rows.length) }, async () => {
      while (next < rows.length) {
        const k = next++;
        try {
          decisions[k] = await labeller.label(rows[k].report);
        } catch (e) {
          // An unreachable server is a command-line problem: one line, no stack.
          if (e instanceof LlmUnreachable) throw new FlagError(`${FLAGS.script}: ${e.message}`);
          throw new Error(`report of patient "${rows[k].patient_id}" (row ${k + 1}): ${(e as Error).message}`);
        }
        bar.tick();
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  writeAtomic(
    join(out, 'labels.csv'),
    utf8(
      serialiseCsv([
        ['patient_id', 'label', 'evidence'],
        ...rows.map((r, k) => [r.patient_id.trim(), String(decisions[k].label), decisions[k].evidence]),
      ]),
    ),
  );
  const counts = { 1: 0, 0: 0, uncertain: 0 };
  for (const d of decisions) counts[d.label]++;
  console.log(
    `labels: ${counts[1]} polyp, ${counts[0]} none, ${counts.uncertain} uncertain ` +
      `(${seconds.toFixed(1)} s) -> ${join(out, 'labels.csv')}`,
  );

  // Evaluation, only when the CSV carries truth labels.
  if (!header.includes('label')) {
    console.log('no `label` column in the reports CSV: no metrics');
    return { out };
  }
  const truth = rows.map((r, k) => {
    const v = r.label.trim();
    if (v !== '0' && v !== '1') throw new Error(`${reportsPath}: row ${k + 1}: truth label "${r.label}" is not 0 or 1`);
    return Number(v) as 0 | 1;
  });
  const certain = header.includes('certain')
    ? rows.map((r) => r.certain.trim() === '1' || r.certain.trim().toLowerCase() === 'true')
    : undefined;
  const overall = reportLabelMetrics(truth, decisions, certain);
  const groups: Record<string, ReportLabelMetrics> = {};
  for (const col of ['split', 'centre']) {
    if (!header.includes(col)) continue;
    for (const v of [...new Set(rows.map((r) => r[col].trim()))].sort()) {
      const idx = rows.map((r, k) => (r[col].trim() === v ? k : -1)).filter((k) => k >= 0);
      groups[`${col}=${v}`] = reportLabelMetrics(
        idx.map((k) => truth[k]),
        idx.map((k) => decisions[k]),
        certain && idx.map((k) => certain[k]),
      );
    }
  }
  const naiveM = reportLabelMetrics(
    truth,
    rows.map((r) => {
      const g = naive(r.report);
      return { label: g, evidence: '', guess: g };
    }),
  );
  const metrics = {
    reports: reportsPath,
    extractor: labeller.name,
    seconds,
    counts,
    ...overall,
    groups,
    baselines: { naiveKeyword: { accuracy: naiveM.accuracy, precision: naiveM.precision, recall: naiveM.recall } },
    errors: rows
      .map((r, k) => ({ patient_id: r.patient_id.trim(), truth: truth[k], ...decisions[k] }))
      .filter((e) => e.label !== 'uncertain' && e.label !== e.truth),
  };
  writeAtomic(join(out, 'metrics.json'), utf8(JSON.stringify(metrics, null, 2) + '\n'));
  console.log(summary('all', overall));
  console.log(formatConfusion(overall));
  if (overall.uncertainMatch) {
    const u = overall.uncertainMatch;
    console.log(
      `uncertain: ${u.predictedUncertain} flagged, ${u.truthUncertain} uncertain in the truth, ${u.both} in both`,
    );
  }
  for (const [g, m] of Object.entries(groups)) console.log(summary(g, m));
  console.log(
    `naive keyword baseline: accuracy ${fmt(naiveM.accuracy)}, precision ${fmt(naiveM.precision)}, ` +
      `recall ${fmt(naiveM.recall)}`,
  );
  if (metrics.errors.length)
    console.log(`${metrics.errors.length} decided report(s) disagree with the truth (listed in metrics.json)`);
  console.log(`metrics -> ${join(out, 'metrics.json')}`);
  return { out, metrics };
}

if (isMain(import.meta.url)) runMain(main);
