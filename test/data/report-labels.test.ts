// The rule report labeller (engine/data/report-labels.ts): a table of English and Chinese
// phrasings, the hard ones included (history with no recurrence, "polypectomy not required",
// pseudo-findings, counts, abbreviations, negation scope), the evidence it returns, the synthetic
// reports, and the metrics.
import { describe, it, expect } from 'vitest';
import { reportForLabel, reportSet } from '../../runtime-node/synthetic/index.ts';
import {
  clauses,
  reportLabelMetrics,
  ruleLabel,
  ruleLabeller,
  formatConfusion,
  type ReportLabelValue,
} from '../../engine/data/report-labels.ts';

// [report, expected label, a fragment the evidence must contain]
const EN: [string, ReportLabelValue, string][] = [
  // plain findings and negations
  ['A 5 mm sessile polyp was found in the sigmoid colon and removed with a cold snare.', 1, '5 mm sessile polyp'],
  ['No polyps were seen.', 0, 'No polyps'],
  ['The colon was free of polyps.', 0, 'free of polyps'],
  ['Careful inspection revealed no polyps or other mucosal lesions.', 0, 'revealed no polyps'],
  ['Polyps were not seen in the colon.', 0, 'not seen'],
  ['No evidence of polyps or masses.', 0, 'No evidence'],
  ['No polypoid lesions identified.', 0, 'No polypoid'],
  // negation scope
  ['No complications after removal of a 6 mm polyp in the rectum.', 1, 'removal of a 6 mm polyp'],
  ['No polyps in the rectum, but a 4 mm polyp in the sigmoid.', 1, 'a 4 mm polyp in the sigmoid'],
  ['No polyps except a 3 mm polyp at 20 cm.', 1, 'a 3 mm polyp at 20 cm'],
  ['A 12 mm polyp could not be removed and was tattooed.', 1, '12 mm polyp'],
  ['A 7 mm polyp was removed but not retrieved.', 1, '7 mm polyp was removed'],
  // history, surveillance, previous polypectomy with no recurrence
  ['Indication: polyp surveillance. The colon was normal.', 0, ''],
  ['Surveillance after previous polypectomy; no recurrence. No polyps.', 0, 'No polyps'],
  ['Previous polypectomy site in the sigmoid: scar only, no recurrence.', 0, 'only history'],
  ['History of adenomatous polyps. Normal colonoscopy.', 0, 'only history'],
  ['s/p polypectomy 2019. Recurrent 5 mm polyp at the scar, removed by EMR.', 1, 'Recurrent 5 mm polyp'],
  ['Family history of colorectal cancer and polyps; no polyps found today.', 0, 'no polyps found today'],
  // "polypectomy not required" and other procedure phrasings
  ['Small hyperplastic polyp in the rectum; polypectomy not required.', 1, 'hyperplastic polyp in the rectum'],
  ['Normal mucosa throughout. Polypectomy not required.', 0, 'no polyp'],
  ['Cold snare polypectomy in the transverse colon.', 1, 'Cold snare polypectomy'],
  // pseudo-findings
  ['A suspected polyp in the caecum proved to be a prominent fold.', 0, 'proved to be'],
  ['Suspected polyp in the caecum, proved to be a fold on re-inspection.', 0, 'proved to be a fold'],
  ['Inflammatory pseudopolyps in the sigmoid, in keeping with old colitis.', 0, 'pseudopolyps'],
  ['The polypoid area turned out to be stool. No polyps.', 0, 'No polyps'],
  ['A questionable polypoid area was not confirmed on re-inspection.', 'uncertain', 'not confirmed'],
  // hedges
  ['Possible small polyp in the caecum (approx. 4 mm), biopsied.', 'uncertain', 'Possible small polyp'],
  ['A 6 mm lesion in the sigmoid, probably a polyp, was removed.', 'uncertain', 'probably a polyp'],
  ['A small polyp cannot be excluded in the ascending colon.', 'uncertain', 'cannot be excluded'],
  ['?polyp at the hepatic flexure, to be reviewed.', 'uncertain', '?polyp'],
  ['Possible polyp in the caecum. A 5 mm polyp in the rectum, removed.', 1, '5 mm polyp in the rectum'],
  // counts and abbreviations
  ['Two polyps (4 mm and 6 mm) in the sigmoid; both removed.', 1, 'Two polyps'],
  ['Polyps x3, all removed.', 1, 'Polyps x3'],
  ['Polyps: none.', 0, 'Polyps: none'],
  ['Number of polyps: 0.', 0, 'Number of polyps: 0'],
  ['0 polyps detected; withdrawal time 8 min.', 0, '0 polyps'],
  ['A 0.5 cm polyp in the rectum.', 1, '0.5 cm polyp'],
  ['15 mm SSL in the ascending colon, EMR.', 1, 'SSL'],
  ['TA removed from the descending colon.', 1, 'TA removed'],
  ['20 mm LST-G in the rectum.', 1, 'LST'],
  ['Normal colonoscopy to the caecum.', 0, 'no polyp'],
];

const ZH: [string, ReportLabelValue, string][] = [
  ['进镜至回盲部，肠道清洁，未见息肉。', 0, '未见息肉'],
  ['全结肠未见明显息肉及肿物。', 0, '未见明显息肉'],
  ['乙状结肠见一枚0.5cm息肉，予以切除。', 1, '乙状结肠见一枚0.5cm息肉'],
  ['横结肠见一枚无蒂息肉，大小约0.4cm，已行EMR。', 1, '无蒂息肉'],
  ['直肠见一小息肉，无需切除。', 1, '直肠见一小息肉'],
  ['结肠多发息肉。', 1, '多发息肉'],
  ['结肠息肉切除术后复查，未见复发。', 0, '术后'],
  ['既往结肠息肉病史，本次未见息肉。', 0, '本次未见息肉'],
  ['升结肠见一隆起，考虑息肉。', 'uncertain', '考虑息肉'],
  ['直肠可能为息肉，待病理。', 'uncertain', '可能为息肉'],
  ['降结肠疑似息肉样隆起。', 'uncertain', '疑似息肉'],
  ['乙状结肠假性息肉，考虑炎症后改变。', 0, '假性息肉'],
  ['回盲部隆起证实为皱襞。', 0, '证实为皱襞'],
  ['降结肠疑似息肉，证实为皱襞。', 0, '降结肠疑似息肉, 证实为皱襞'],
  ['横结肠可疑隆起，反复观察未证实。', 'uncertain', '未证实'],
  ['诊断：结肠腺瘤。', 1, '结肠腺瘤'],
  ['表面光滑无糜烂的息肉位于直肠。', 1, '无糜烂的息肉'],
  ['结肠镜检查未见明显异常。', 0, 'no polyp'],
];

describe('rule report labeller', () => {
  it.each(EN)('EN %#: %s', (report, label, evidence) => {
    const d = ruleLabel(report);
    expect(d.label, JSON.stringify(d)).toBe(label);
    expect(d.evidence.toLowerCase()).toContain(evidence.toLowerCase());
    expect(d.guess).toBe(label === 'uncertain' ? d.guess : label);
  });

  it.each(ZH)('ZH %#: %s', (report, label, evidence) => {
    const d = ruleLabel(report);
    expect(d.label, JSON.stringify(d)).toBe(label);
    expect(d.evidence).toContain(evidence);
  });

  it('hedged findings guess 1, unconfirmed suspicions guess 0', () => {
    expect(ruleLabel('Possible polyp in the sigmoid.').guess).toBe(1);
    expect(ruleLabel('A questionable polypoid area was not confirmed.').guess).toBe(0);
  });

  it('cuts clauses at sentence ends, semicolons, commas outside numbers and contrast words', () => {
    expect(clauses('No polyps in the rectum, but a 4 mm polyp; size 1,5 cm.\nDone')).toEqual([
      'No polyps in the rectum',
      'but a 4 mm polyp',
      'size 1,5 cm.',
      'Done',
    ]);
    expect(clauses('未见息肉，直肠见一小息肉。但无需切除')).toEqual(['未见息肉', '直肠见一小息肉', '但无需切除']);
  });

  it('labels the synthetic reports: every certain report right, every uncertain one flagged', async () => {
    const cases = reportSet(11, { patients: 400, width: 8, height: 8, framesPerPatient: [1, 1] });
    const pred = await Promise.all(cases.map((c) => ruleLabeller.label(c.report)));
    const m = reportLabelMetrics(
      cases.map((c) => c.label),
      pred,
      cases.map((c) => c.certain),
    );
    expect(m.accuracy).toBe(1);
    expect(m.uncertainMatch!.both).toBe(m.uncertainMatch!.truthUncertain);
    expect(m.uncertainMatch!.predictedUncertain).toBe(m.uncertainMatch!.truthUncertain);
    expect(m.coverage).toBeGreaterThan(0.8);
  });

  it('labels the Chinese synthetic reports the same way', () => {
    const cases = Array.from({ length: 400 }, (_, i) => ({
      label: (i % 2) as 0 | 1,
      ...reportForLabel(3, `p${i}`, (i % 2) as 0 | 1, 'zh'),
    }));
    expect(cases.every((c) => /[\u4e00-\u9fff]/.test(c.report))).toBe(true);
    const m = reportLabelMetrics(
      cases.map((c) => c.label),
      cases.map((c) => ruleLabel(c.report)),
      cases.map((c) => c.certain),
    );
    expect(m.accuracy).toBe(1);
    expect(m.uncertainMatch).toEqual({
      truthUncertain: m.uncertainMatch!.both,
      predictedUncertain: m.uncertainMatch!.both,
      both: m.uncertainMatch!.both,
    });
    expect(m.uncertainMatch!.both).toBeGreaterThan(20);
  });

  it('metrics: counts, ratios and the confusion table', () => {
    const d = (label: ReportLabelValue, guess: 0 | 1) => ({ label, evidence: '', guess });
    const m = reportLabelMetrics(
      [1, 1, 1, 0, 0, 0],
      [d(1, 1), d(0, 0), d('uncertain', 1), d(0, 0), d(1, 1), d('uncertain', 1)],
      [true, true, false, true, true, true],
    );
    expect(m).toMatchObject({
      n: 6,
      decided: 4,
      coverage: 4 / 6,
      accuracy: 0.5,
      precision: 0.5,
      recall: 0.5,
      f1: 0.5,
      accuracyWithGuesses: 3 / 6,
    });
    expect(m.confusion).toEqual({ 0: { 0: 1, 1: 1, uncertain: 1 }, 1: { 0: 1, 1: 1, uncertain: 1 } });
    expect(m.uncertainMatch).toEqual({ truthUncertain: 1, predictedUncertain: 2, both: 1 });
    expect(formatConfusion(m).split('\n')).toEqual([
      '             pred 0 pred 1  uncertain',
      'truth 0           1      1          1',
      'truth 1           1      1          1',
    ]);
    expect(() => reportLabelMetrics([1], [])).toThrow(/1 truth labels but 0 decisions/);
  });
});
