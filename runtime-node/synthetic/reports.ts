// Synthetic colonoscopy patients for EndoKED (spec §2.1-2.2): each patient is a bag of frames
// (synthetic colonoscopy frames, some with polyps for a positive patient) and a free-text
// report. The LLM report labeller of the paper is unpublished; the spec asks for synthetic
// reports and a keyword/regex labeller as its stand-in. The reports are written to make that
// labeller non-trivial but solvable: varied templates, synonyms for the segments, sizes written
// several ways, negations ("no polyps were seen"), hedged findings ("possible small polyp"),
// findings in several segments, and hard negatives that mention polyps without reporting one
// (history, an indication of surveillance, a suspected polyp that proved to be a fold).
// Truth: label 1 iff the patient's frames contain a polyp; `certain` is false when the report
// only hedges (positive) or mentions an unconfirmed suspicion (negative), the cases EndoKED's
// label_certain.txt would leave out.
import { shuffle } from '../../engine/index.ts';
import { rng, weighted, type Rng } from '../../engine/data/index.ts';
import { sampleColonoscopyScene, type ColonoscopyScene } from './colonoscopy.ts';
import { buildReportZh } from './reports-zh.ts';

export const SEGMENTS = ['caecum', 'ascending', 'transverse', 'descending', 'sigmoid', 'rectum'] as const;
export type Segment = (typeof SEGMENTS)[number];

const SEGMENT_NAMES: Record<Segment, string[]> = {
  caecum: ['caecum', 'cecum', 'caecal pole'],
  ascending: ['ascending colon', 'right colon'],
  transverse: ['transverse colon', 'mid transverse colon'],
  descending: ['descending colon', 'left colon'],
  sigmoid: ['sigmoid colon', 'sigmoid'],
  rectum: ['rectum', 'distal rectum'],
};

export interface PolypFinding {
  segment: Segment;
  sizeMm: number;
  morphology: string;
  certain: boolean;
}
export interface PatientFrame {
  fileName: string;
  polyp: boolean;
  scene: ColonoscopyScene;
}
export interface PatientCase {
  patientId: string;
  /** 1 iff some frame shows a polyp; the report agrees. */
  label: 0 | 1;
  /** False when the report hedges or mentions an unconfirmed suspicion. */
  certain: boolean;
  report: string;
  findings: PolypFinding[];
  frames: PatientFrame[];
}

export interface ReportSetOptions {
  patients: number;
  /** Fraction of positive patients (default 0.5). */
  positiveRate?: number;
  /** Frames per patient, inclusive (default [4, 16]). */
  framesPerPatient?: readonly [number, number];
  width?: number;
  height?: number;
}

const cap = (t: string) => t[0].toUpperCase() + t.slice(1);

function size(r: Rng, mm: number): string {
  return r.pick([`${mm} mm`, `${mm}mm`, `${mm} mm`, `approximately ${mm} mm`, `about ${mm} mm`]);
}
const sizeAdj = (r: Rng, mm: number) => r.pick([`${mm} mm`, `${mm}-mm`, `${mm}mm`]);
const removal = (r: Rng) =>
  r.pick([
    'removed with a cold snare',
    'resected with a hot snare',
    'removed with cold forceps',
    'resected en bloc',
    'removed and retrieved for histology',
  ]);

function positiveSentence(r: Rng, f: PolypFinding): string {
  const seg = r.pick(SEGMENT_NAMES[f.segment]),
    m = f.morphology;
  if (!f.certain) {
    return r.pick([
      `Possible small polyp in the ${seg} (approx. ${f.sizeMm} mm), biopsied.`,
      `A ${sizeAdj(r, f.sizeMm)} lesion in the ${seg}, probably a polyp, was removed.`,
      `Suspected polyp in the ${seg}; histology pending.`,
      `There may be a small ${m} polyp in the ${seg}, ${size(r, f.sizeMm)}.`,
    ]);
  }
  return r.pick([
    `A ${sizeAdj(r, f.sizeMm)} ${m} polyp was found in the ${seg} and ${removal(r)}.`,
    `${cap(seg)}: ${sizeAdj(r, f.sizeMm)} ${m} polyp, ${removal(r)}.`,
    `There is a ${sizeAdj(r, f.sizeMm)} ${m} polyp in the ${seg}.`,
    `Polypectomy of a ${sizeAdj(r, f.sizeMm)} polyp in the ${seg}.`,
    `In the ${seg}, a ${m} polyp measuring ${size(r, f.sizeMm)} was ${removal(r)}.`,
    `One ${m} polyp of ${size(r, f.sizeMm)} at ${r.randint(5, 70)} cm (${seg}), ${removal(r)}.`,
    `A ${sizeAdj(r, f.sizeMm)} ${m} polyp in the ${seg} was removed but not retrieved.`,
    `No complications after removal of a ${sizeAdj(r, f.sizeMm)} polyp in the ${seg}.`,
    `A ${sizeAdj(r, f.sizeMm)} ${m} polyp in the ${seg} could not be removed and was tattooed.`,
  ]);
}

const NEGATIONS = (r: Rng) =>
  r.pick([
    'No polyps were seen.',
    'No polyps.',
    'The colon was free of polyps.',
    'No evidence of polyps or masses.',
    'Negative for polyps throughout.',
    'Polyps: none.',
    'No polypoid lesions identified.',
    'There were no polyps or other mucosal lesions.',
    'Careful inspection revealed no polyps.',
  ]);
const segmentNegation = (r: Rng, s: Segment) => {
  const seg = r.pick(SEGMENT_NAMES[s]);
  return r.pick([`No polyps in the ${seg}.`, `The ${seg} was normal without polyps.`, `${cap(seg)}: no polyp.`]);
};
const OTHER_FINDINGS = [
  'Mild diverticulosis in the sigmoid colon.',
  'Small internal haemorrhoids.',
  'Melanosis coli.',
  'A small lipoma in the ascending colon.',
  'Scattered diverticula in the left colon.',
  'Angiodysplasia in the caecum, treated with argon plasma coagulation.',
  'Normal terminal ileum.',
];

function buildReport(r: Rng, label: 0 | 1, findings: PolypFinding[]): { text: string; certain: boolean } {
  const lines: string[] = [];
  let certain = label === 0 || findings.some((f) => f.certain);
  const indication = r.pick([
    'screening',
    'rectal bleeding',
    'change in bowel habit',
    'iron-deficiency anaemia',
    'family history of colorectal cancer',
    r.bool(0.5) ? 'polyp surveillance' : 'abdominal pain',
  ]);
  lines.push(`Indication: ${indication}.`);
  lines.push(
    r.pick([
      `Bowel preparation was ${r.pick(['good', 'adequate', 'fair'])}.`,
      `Boston bowel preparation score ${r.randint(6, 9)}.`,
    ]),
  );
  lines.push(
    r.pick([
      'The scope was advanced to the caecum.',
      'Intubation of the terminal ileum.',
      'Complete colonoscopy to the caecum; ileocaecal valve identified.',
    ]),
  );
  const body: string[] = [];
  if (label === 1) {
    const segs = new Set(findings.map((f) => f.segment));
    if (
      findings.length === 2 &&
      findings[0].segment === findings[1].segment &&
      findings.every((f) => f.certain) &&
      r.bool(0.5)
    ) {
      body.push(
        `Two polyps (${findings[0].sizeMm} mm and ${findings[1].sizeMm} mm) were seen in the ` +
          `${r.pick(SEGMENT_NAMES[findings[0].segment])}; both were removed.`,
      );
    } else for (const f of findings) body.push(positiveSentence(r, f));
    if (r.bool(0.35)) {
      const s = r.pick(SEGMENTS.filter((x) => !segs.has(x)));
      body.push(segmentNegation(r, s));
    }
  } else {
    body.push(r.bool(0.75) ? NEGATIONS(r) : segmentNegation(r, r.pick(SEGMENTS)) + ' ' + NEGATIONS(r));
    const hard = r.random();
    if (hard < 0.1) body.push('Surveillance after previous polypectomy; no recurrence.');
    else if (hard < 0.18) body.push('History of adenomatous polyps.');
    else if (hard < 0.26) {
      body.push(
        `A questionable polypoid area in the ${r.pick(SEGMENT_NAMES[r.pick(SEGMENTS)])} was not ` +
          `confirmed on re-inspection.`,
      );
      certain = false;
    } else if (hard < 0.32)
      body.push(`A suspected polyp in the ${r.pick(SEGMENT_NAMES[r.pick(SEGMENTS)])} proved to be a prominent fold.`);
  }
  if (r.bool(0.4)) body.push(r.pick(OTHER_FINDINGS));
  lines.push(...shuffle(body, r));
  const n = findings.length;
  if (r.bool(0.35)) lines.push('Impression: see findings above.');
  else if (label === 1) {
    lines.push(
      certain
        ? r.pick([
            `Impression: ${n === 1 ? 'one polyp' : `${n} polyps`} removed; surveillance colonoscopy ` +
              `in ${r.pick([3, 5])} years.`,
            'Conclusion: colonic polyps.',
            `Impression: ${n > 1 ? 'polyps' : 'polyp'} as above.`,
          ])
        : r.pick([
            'Impression: possible polyp; follow-up recommended.',
            'Conclusion: probable small polyp, await histology.',
          ]),
    );
  } else {
    lines.push(
      r.pick([
        'Impression: normal colonoscopy.',
        'Conclusion: no polyps; repeat screening in 10 years.',
        'Impression: no significant abnormality.',
      ]),
    );
  }
  return { text: lines.join(r.bool(0.5) ? ' ' : '\n'), certain };
}

/** One to three polyp findings (15% of patients: all hedged), for a positive patient. */
function sampleFindings(r: Rng): PolypFinding[] {
  const findings: PolypFinding[] = [];
  const hedged = r.bool(0.15),
    count = weighted(r, [0.6, 0.3, 0.1]) + 1;
  const seg = r.pick(SEGMENTS);
  for (let k = 0; k < count; k++) {
    const mm = r.bool(0.6) ? r.randint(2, 9) : r.randint(10, 30);
    findings.push({
      segment: k === 0 || r.bool(0.4) ? seg : r.pick(SEGMENTS),
      sizeMm: mm,
      morphology: r.pick(
        mm <= 5 ? ['diminutive', 'sessile', 'flat'] : ['sessile', 'pedunculated', 'semi-pedunculated', 'flat'],
      ),
      certain: !hedged,
    });
  }
  return findings;
}

/**
 * A report written from a given label (for bags whose label comes from elsewhere, e.g. real
 * frames): the same findings and templates as `reportSet` (or their Chinese counterparts,
 * reports-zh.ts), deterministic per (seed, key, language).
 */
export function reportForLabel(
  seed: number,
  key: string,
  label: 0 | 1,
  language: 'en' | 'zh' = 'en',
): { report: string; certain: boolean; findings: PolypFinding[] } {
  const findings = label === 1 ? sampleFindings(rng(seed, 'label-report', key, 'findings')) : [];
  const { text, certain } = (language === 'zh' ? buildReportZh : buildReport)(
    rng(seed, 'label-report', key, 'text'),
    label,
    findings,
  );
  return { report: text, certain, findings };
}

/** The patients of the synthetic report set: bags of frame scenes plus report and label. */
export function reportSet(seed: number, opts: ReportSetOptions): PatientCase[] {
  const [fLo, fHi] = opts.framesPerPatient ?? [4, 16];
  if (!(fLo >= 1 && fHi >= fLo)) throw new Error(`reportSet: framesPerPatient [${fLo}, ${fHi}] is not a valid range`);
  const out: PatientCase[] = [];
  for (let p = 0; p < opts.patients; p++) {
    const r = rng(seed, 'patient', p),
      patientId = `pt${String(p).padStart(4, '0')}`;
    const label: 0 | 1 = r.bool(opts.positiveRate ?? 0.5) ? 1 : 0;
    const findings = label === 1 ? sampleFindings(r) : [];
    const { text, certain } = buildReport(rng(seed, 'patient', p, 'report'), label, findings);
    const nFrames = r.randint(fLo, fHi),
      nPos = label ? r.randint(1, Math.max(1, Math.round(0.4 * nFrames))) : 0;
    const positive = new Set(
      shuffle(
        Array.from({ length: nFrames }, (_, k) => k),
        r,
      ).slice(0, nPos),
    );
    const frames: PatientFrame[] = [];
    for (let k = 0; k < nFrames; k++) {
      const polyp = positive.has(k);
      const scene = sampleColonoscopyScene(rng(seed, 'patient', p, 'frame', k), {
        width: opts.width,
        height: opts.height,
        polyps: polyp ? [0, 0.8, 0.2] : 0,
      });
      frames.push({ fileName: `${patientId}_${String(k).padStart(3, '0')}.jpg`, polyp, scene });
    }
    out.push({ patientId, label, certain, report: text, findings, frames });
  }
  return out;
}
