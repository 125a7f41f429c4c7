// Report -> polyp label (EndoKED stage 1, spec §2.1). EndoKED labels each patient's colonoscopy
// report with an unpublished LLM prompt (only its output, label/label_certain.txt, is released);
// the spec asks for a keyword/regex labeller as the stand-in. This is that labeller, for English
// and Chinese reports (EndoKED's are Chinese), behind an interface an LLM labeller also implements
// (runtime-node/llm-labels.ts).
//
// A report is cut into clauses (sentences, then ';', ',', '，', '。' and contrast words such as
// "but", "except", "但"). Each clause that names a polyp is classed, first match wins:
//   history      not a finding of this examination: indication, "history of", "previous/prior",
//                "s/p", "surveillance after", "known"; Chinese 术后, 既往, 病史, 曾, 复查
//   pseudo       a finding that proved not to be a polyp: "proved/turned out to be a fold",
//                "pseudopolyps", "not a true polyp"; Chinese 假性息肉, 证实为/实为 + 皱襞/粪
//   unconfirmed  "not confirmed on re-inspection", "unlikely"; Chinese 未证实
// A clause naming no finding that resolves the one before ("..., proved to be a fold", "...,
// not confirmed", 疑似息肉，证实为皱襞) turns that clause into pseudo / unconfirmed.
//   negated      a negation cue scoping over the polyp: before it within six words and with no
//                scope breaker ("after", "following", ...) between ("No complications after
//                removal of a polyp" is a polyp), or after it ("polyps were not seen"), or a zero
//                count ("0 polyps", "Polyps: none", "number of polyps: 0"); Chinese 未见, 未发现,
//                无, 没有, 排除 before the noun (无蒂 "sessile" is morphology, not a negation)
//   hedged       "possible", "probable", "suspected", "may be", "cannot be excluded", "?polyp";
//                Chinese 考虑, 可能, 疑似, 可疑, 待排, 不除外, 倾向
//   positive     anything else: a polyp, adenoma, SSL/SSA, TA/TVA, LST, polypoid lesion, a count
//                ("2 polyps", "polyps x3", "多发息肉"), or a polypectomy/EMR done in this exam
//                ("polypectomy not required" names no finding: it is neutral)
// The report's label: any positive clause -> 1; else any hedged -> 'uncertain' (best guess 1);
// else any unconfirmed -> 'uncertain' (guess 0); else 0 (a negated or pseudo clause is the
// evidence; a report that never names a polyp is 0 too). The deciding clause is the evidence.
// Pure TypeScript: no I/O.

export type ReportLabelValue = 0 | 1 | 'uncertain';

export interface ReportDecision {
  label: ReportLabelValue;
  /** The phrase that decided (a clause of the report), or a short note when nothing did. */
  evidence: string;
  /** The more likely binary label when `label` is 'uncertain' (else equal to it). */
  guess: 0 | 1;
}

/** A report labeller: the rule extractor below or an LLM client. */
export interface ReportLabeller {
  readonly name: string;
  label(report: string): Promise<ReportDecision>;
}

type ClauseClass = 'history' | 'pseudo' | 'unconfirmed' | 'negated' | 'hedged' | 'positive';

// ---- English ------------------------------------------------------------------------------------
// Finding nouns, matched on the lower-cased clause; abbreviations on the original case.
const EN_FINDING = new RegExp(
  String.raw`\b(polyps?|polypoid (?:lesions?|areas?|growths?|mucosa)|adenomas?|` +
    String.raw`adenomatous (?:polyps?|lesions?)|(?:sessile )?serrated (?:lesions?|` +
    String.raw`adenomas?|polyps?)|laterally spreading (?:tumou?rs?|lesions?))\b`,
);
const EN_ABBREV = /\b(SSLs?|SSA\/Ps?|SSAs?|TVAs?|TAs?|LSTs?)\b/;
const EN_PROCEDURE = /\b(polypectom(?:y|ies)|emr|endoscopic mucosal resection|(?:cold|hot) snare)\b/;
const EN_HISTORY = new RegExp(
  String.raw`^\s*(indications?|reason|history|hx|h\/o|s\/p)\b|\b(history of|` +
    String.raw`h\/o|hx of|s\/p|status post|previous(?:ly)?|prior|surveillance (?:after|` +
    String.raw`for|of)|follow[- ]up (?:of|after|for)|known|family history)\b`,
);
const EN_CURRENT = /\b(recurren(?:t|ce)|residual)\b/;
const EN_PSEUDO = new RegExp(
  String.raw`\b(proved|proven|turned out|was found|shown) to be\b|\bpseudo-?polyps?\b|` +
    String.raw`\bnot a (?:true |real )?polyp\b|\b(?:was|were) (?:only |just )?(?:a |` +
    String.raw`an )?(?:fold|folds|stool|bubbles?|lipoma|artefact|artifact)\b`,
);
const EN_UNCONFIRMED = new RegExp(
  String.raw`\b(not|never) (?:been )?confirmed\b|\bunconfirmed\b|\bcould not be (?:confirmed|` +
    String.raw`reproduced|found again)\b|\bunlikely\b`,
);
const EN_HEDGE = new RegExp(
  String.raw`\b(possible|possibly|probable|probably|suspected|suspicious|` +
    String.raw`suspicion|questionable|likely|may be|might be|may represent|` +
    String.raw`equivocal|query|cannot be (?:excluded|ruled out)|could not be (?:excluded|` +
    String.raw`ruled out)|not excluded)\b|\?\s*polyp`,
);
const EN_NEG_PRE =
  /\b(no|not|without|free of|negative for|absence of|absent|none|neither|nor|rule[sd]? out|excluded)\b/g;
const EN_NEG_POST = new RegExp(
  String.raw`^[^.]{0,40}?\b((?:was|were|is|are)? ?not (?:seen|found|identified|` +
    String.raw`detected|present|visuali[sz]ed|noted|observed|demonstrated)|` +
    String.raw`absent|excluded|ruled out)\b`,
);
const EN_ZERO = new RegExp(
  String.raw`(?<![\d.])\b(?:0|zero)\s+polyps?\b|\bpolyps?\s*(?:count|number)?\s*[:=-]\s*(none|` +
    String.raw`nil|0|zero|absent|not seen)\b|\b(number of polyps|polyp count)\s*[:=]?\s*(0|` +
    String.raw`zero|none)\b`,
);
const EN_BREAK =
  /\b(after|following|post|but|however|except|apart|besides|although|though|which|whereas|removed|resected)\b/;

function englishClass(s: string, orig: string): ClauseClass | null {
  // Abbreviations are matched on the original case (lower-casing keeps ASCII positions).
  const finding = EN_FINDING.exec(s) ?? EN_ABBREV.exec(orig);
  const procedure = EN_PROCEDURE.exec(s);
  if (!finding && !procedure && !/\bpseudo-?polyps?\b/.test(s)) return null;
  if (EN_HISTORY.test(s) && !(EN_CURRENT.test(s) && !/\bno (?:evidence of )?(?:recurren|residual)/.test(s)))
    return 'history';
  if (EN_PSEUDO.test(s)) return 'pseudo';
  if (!finding) {
    // A procedure without a polyp noun: done in this exam unless negated ("polypectomy not required").
    return /\b(not|no|without|deferred|unnecessary)\b/.test(s) ? null : 'positive';
  }
  if (EN_UNCONFIRMED.test(s)) return 'unconfirmed';
  // "cannot be excluded" holds a negation word but hedges.
  if (/\b(cannot|can ?not|could not|not) (?:be )?(?:excluded|ruled out)\b/.test(s)) return 'hedged';
  if (EN_ZERO.test(s)) return 'negated';
  const at = finding.index;
  for (const m of s.matchAll(EN_NEG_PRE)) {
    if (m.index >= at) break;
    const between = s.slice(m.index + m[0].length, at);
    if (between.trim().split(/\s+/).filter(Boolean).length <= 6 && !EN_BREAK.test(between)) return 'negated';
  }
  if (EN_NEG_POST.test(s.slice(at + finding[0].length))) return 'negated';
  if (EN_HEDGE.test(s)) return 'hedged';
  return 'positive';
}

// ---- Chinese ------------------------------------------------------------------------------------
const ZH_FINDING = /息肉|腺瘤|侧向发育型|LST/;
const ZH_HISTORY = /术后|既往|病史|曾行|曾于|复查|随访/;
const ZH_PSEUDO = /假性息肉|(证实|实|确认)为(皱襞|粪|气泡|脂肪瘤)|非息肉/;
const ZH_UNCONFIRMED = /未(能)?证实|未再见/;
const ZH_CURRENT = /(复发|残留)(息肉|病灶)|见.{0,4}(复发|残留)/;
const ZH_HEDGE = /考虑|可能|疑似|疑为|可疑|待排|不除外|不能除外|倾向/;
const ZH_NEG =
  /(未见|未发现|未及|未检出|未见明显|无明显|无|没有|排除|否认)[^的]{0,6}?(息肉|腺瘤|侧向发育型)|(息肉|腺瘤)[^，。；]{0,4}?(未见|消失)|0枚息肉|零枚/;

function chineseClass(s: string): ClauseClass | null {
  // 无蒂 (sessile, literally "without stalk") is morphology, not a negation.
  const t = s.replace(/无蒂/g, '广基');
  if (!ZH_FINDING.test(t) && !/息肉切除|EMR|ESD/i.test(t)) {
    if (ZH_PSEUDO.test(t)) return 'pseudo';
    return /隆起/.test(t) && ZH_HEDGE.test(t) ? 'hedged' : null; // 可疑隆起: a suspected lesion
  }
  // History, unless a recurrence or residue is seen now (not "未见复发", none seen).
  if (ZH_HISTORY.test(t) && !ZH_CURRENT.test(t.replace(/未见.{0,4}(复发|残留)/g, ''))) return 'history';
  if (ZH_PSEUDO.test(t)) return 'pseudo';
  if (!ZH_FINDING.test(t)) return /未|无需|不需|无须/.test(t) ? null : 'positive';
  if (ZH_UNCONFIRMED.test(t)) return 'unconfirmed';
  if (ZH_NEG.test(t)) return 'negated';
  if (ZH_HEDGE.test(t)) return 'hedged';
  return 'positive';
}

// ---- clauses and the report's decision ------------------------------------------------------------
const CJK = /[\u4e00-\u9fff]/;

/** Clauses: sentence ends, semicolons, commas (outside numbers) and contrast words. */
export function clauses(report: string): string[] {
  return report
    .split(
      new RegExp(
        String.raw`(?<=[.!?])\s+|[\n;；。！？]|(?<!\d),(?!\d)|，|\b(?=(?:but|however|` +
          String.raw`except|apart from|other than|although|whereas)\b)|(?=但|另见)`,
        'i',
      ),
    )
    .map((c) => (c ?? '').trim())
    .filter((c) => c.length > 0);
}

/** One clause's class (null: it names no polyp finding). */
export function classifyClause(clause: string): ClauseClass | null {
  return CJK.test(clause) ? chineseClass(clause) : englishClass(clause.toLowerCase(), clause);
}

const RANK: ClauseClass[] = ['positive', 'hedged', 'unconfirmed', 'negated', 'pseudo'];

/**
 * A clause that names no finding but resolves the one before it: "..., proved to be a fold",
 * "..., not confirmed"; Chinese "疑似息肉，证实为皱襞", "可疑隆起，反复观察未证实".
 */
function resolution(clause: string): 'pseudo' | 'unconfirmed' | null {
  const zh = CJK.test(clause),
    s = clause.toLowerCase();
  if (zh ? ZH_FINDING.test(clause) : EN_FINDING.test(s) || EN_ABBREV.test(clause)) return null;
  if (zh ? ZH_PSEUDO.test(clause) : EN_PSEUDO.test(s)) return 'pseudo';
  if (zh ? ZH_UNCONFIRMED.test(clause) : EN_UNCONFIRMED.test(s)) return 'unconfirmed';
  return null;
}

/** The rule extractor's decision for one report (see the header). */
export function ruleLabel(report: string): ReportDecision {
  const cs = clauses(report),
    kinds = cs.map(classifyClause);
  for (let i = 1; i < cs.length; i++) {
    const res = resolution(cs[i]);
    if (res && (kinds[i - 1] === 'hedged' || kinds[i - 1] === 'positive')) {
      kinds[i - 1] = res;
      cs[i - 1] = `${cs[i - 1]}, ${cs[i]}`;
    }
  }
  const found = new Map<ClauseClass, string>();
  cs.forEach((c, i) => {
    const k = kinds[i];
    if (k && !found.has(k)) found.set(k, c);
  });
  for (const k of RANK) {
    const evidence = found.get(k);
    if (evidence === undefined) continue;
    if (k === 'positive') return { label: 1, evidence, guess: 1 };
    if (k === 'hedged') return { label: 'uncertain', evidence, guess: 1 };
    if (k === 'unconfirmed') return { label: 'uncertain', evidence, guess: 0 };
    return { label: 0, evidence, guess: 0 };
  }
  return {
    label: 0,
    evidence: found.has('history') ? `(only history: ${found.get('history')})` : '(no polyp finding mentioned)',
    guess: 0,
  };
}

export const ruleLabeller: ReportLabeller = { name: 'rules', label: async (report) => ruleLabel(report) };

// ---- metrics --------------------------------------------------------------------------------------
export interface ReportLabelMetrics {
  n: number;
  /** Reports given 0 or 1 (not 'uncertain'), and their share. */
  decided: number;
  coverage: number;
  /** On the decided reports, positive class = polyp. */
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** Every report, 'uncertain' replaced by the extractor's guess. */
  accuracyWithGuesses: number;
  /** confusion[truth][predicted], predicted in 0 | 1 | uncertain. */
  confusion: Record<'0' | '1', Record<'0' | '1' | 'uncertain', number>>;
  /** When the truth says which reports are uncertain: how 'uncertain' outputs match them. */
  uncertainMatch?: { truthUncertain: number; predictedUncertain: number; both: number };
}

/** Accuracy, precision, recall and the confusion table of decisions against truth labels. */
export function reportLabelMetrics(
  truth: readonly (0 | 1)[],
  pred: readonly ReportDecision[],
  truthCertain?: readonly boolean[],
): ReportLabelMetrics {
  if (truth.length !== pred.length)
    throw new Error(`reportLabelMetrics: ${truth.length} truth labels but ${pred.length} decisions`);
  const confusion = { 0: { 0: 0, 1: 0, uncertain: 0 }, 1: { 0: 0, 1: 0, uncertain: 0 } };
  let guessed = 0;
  truth.forEach((t, i) => {
    confusion[t][pred[i].label]++;
    if (pred[i].guess === t) guessed++;
  });
  const tp = confusion[1][1],
    fp = confusion[0][1],
    fn = confusion[1][0],
    tn = confusion[0][0];
  const decided = tp + fp + fn + tn,
    ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
  const precision = ratio(tp, tp + fp),
    recall = ratio(tp, tp + fn);
  const out: ReportLabelMetrics = {
    n: truth.length,
    decided,
    coverage: ratio(decided, truth.length),
    accuracy: ratio(tp + tn, decided),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    accuracyWithGuesses: ratio(guessed, truth.length),
    confusion,
  };
  if (truthCertain) {
    let tu = 0,
      pu = 0,
      both = 0;
    truthCertain.forEach((c, i) => {
      const u = pred[i].label === 'uncertain';
      if (!c) tu++;
      if (u) pu++;
      if (!c && u) both++;
    });
    out.uncertainMatch = { truthUncertain: tu, predictedUncertain: pu, both };
  }
  return out;
}

/** The confusion table as text: rows truth, columns predicted. */
export function formatConfusion(m: ReportLabelMetrics): string {
  const row = (t: '0' | '1') => {
    const c = m.confusion[t];
    const cells = [String(c['0']).padStart(6), String(c['1']).padStart(6), String(c.uncertain).padStart(10)];
    return `truth ${t}      ${cells.join(' ')}`;
  };
  return ['             pred 0 pred 1  uncertain', row('0'), row('1')].join('\n');
}
