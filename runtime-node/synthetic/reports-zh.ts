// Chinese colonoscopy reports for the synthetic EndoKED patients. EndoKED's reports are Chinese
// (its labeller reads phrases such as 未见息肉); these follow the English generator
// (reports.ts) finding for finding: negations (未见息肉), hedges (考虑/疑似/不除外), history that
// is not a finding (息肉切除术后复查，未见复发), a polyp left in place (无需切除), 无蒂 ("sessile",
// literally "without stalk", not a negation), an unconfirmed suspicion (uncertain) and a
// suspected polyp that proved to be a fold (certain negative).
import { shuffle } from '../../engine/index.ts';
import type { Rng } from '../../engine/data/index.ts';
import type { PolypFinding, Segment } from './reports.ts';

const SEG_ZH: Record<Segment, string[]> = {
  caecum: ['回盲部', '盲肠'],
  ascending: ['升结肠', '升结肠近肝曲'],
  transverse: ['横结肠'],
  descending: ['降结肠'],
  sigmoid: ['乙状结肠'],
  rectum: ['直肠', '直肠下段'],
};
const MORPH_ZH: Record<string, string> = {
  diminutive: '',
  sessile: '无蒂',
  flat: '扁平',
  pedunculated: '有蒂',
  'semi-pedunculated': '亚蒂',
};
const SEGS = Object.keys(SEG_ZH) as Segment[];

const size = (r: Rng, mm: number) => r.pick([`${mm}mm`, `约${(mm / 10).toFixed(1)}cm`, `大小约${mm}mm`]);
const removal = (r: Rng) => r.pick(['予以圈套器切除', '予以冷圈套切除', '予以活检钳钳除', '行EMR切除', '已切除送病理']);

function positive(r: Rng, f: PolypFinding): string {
  const seg = r.pick(SEG_ZH[f.segment]),
    m = MORPH_ZH[f.morphology] ?? '';
  if (!f.certain) {
    return r.pick([
      `${seg}见一隆起，考虑息肉可能，${size(r, f.sizeMm)}，已活检。`,
      `${seg}见一${f.sizeMm}mm隆起，疑似息肉，待病理。`,
      `${seg}黏膜局部隆起，不除外息肉。`,
    ]);
  }
  return r.pick([
    `${seg}见一枚${f.sizeMm}mm${m}息肉，${removal(r)}。`,
    `${seg}可见${m}息肉一枚，${size(r, f.sizeMm)}，${removal(r)}。`,
    `${seg}见一${size(r, f.sizeMm)}息肉，表面光滑，无需切除。`,
    `${seg}见一枚${m || '无蒂'}息肉，表面无糜烂，${size(r, f.sizeMm)}，${removal(r)}。`,
  ]);
}

const NEG = [
  '全结肠未见息肉。',
  '所见结肠黏膜光滑，未见明显息肉及肿物。',
  '肠道未见息肉。',
  '未见息肉、溃疡及新生物。',
];
const OTHER = ['乙状结肠散在憩室。', '内痔。', '末端回肠未见异常。', '结肠黑变病。'];

/** A Chinese report for a label and its findings (the English generator's counterpart). */
export function buildReportZh(r: Rng, label: 0 | 1, findings: PolypFinding[]): { text: string; certain: boolean } {
  let certain = label === 0 || findings.some((f) => f.certain);
  const lines = [
    `检查指征：${r.pick(['体检筛查', '便血', '排便习惯改变', '贫血', '结直肠癌家族史', '息肉术后随访'])}。`,
    r.pick([`肠道准备${r.pick(['良好', '一般', '较好'])}。`, `波士顿肠道准备评分${r.randint(6, 9)}分。`]),
    r.pick(['进镜至回盲部，退镜观察。', '进镜至回肠末端，所见回肠黏膜正常。']),
  ];
  const body: string[] = [];
  if (label === 1) {
    const n = findings.length;
    if (n >= 2 && findings.every((f) => f.certain) && r.bool(0.5)) {
      const largest = Math.max(...findings.map((f) => f.sizeMm));
      body.push(
        `${r.pick(SEG_ZH[findings[0].segment])}见${n === 2 ? '两' : '多'}枚息肉，最大约${largest}mm，均予切除。`,
      );
    } else for (const f of findings) body.push(positive(r, f));
    if (r.bool(0.35))
      body.push(`${r.pick(SEG_ZH[r.pick(SEGS.filter((s) => !findings.some((f) => f.segment === s)))])}未见息肉。`);
  } else {
    body.push(r.pick(NEG));
    const hard = r.random(),
      seg = r.pick(SEG_ZH[r.pick(SEGS)]);
    if (hard < 0.1) body.push('结肠息肉切除术后复查，未见复发。');
    else if (hard < 0.18) body.push('既往结肠息肉病史。');
    else if (hard < 0.26) {
      body.push(`${seg}可疑隆起，反复观察未证实。`);
      certain = false;
    } else if (hard < 0.32) body.push(`${seg}疑似息肉，证实为皱襞。`);
  }
  if (r.bool(0.4)) body.push(r.pick(OTHER));
  lines.push(...shuffle(body, r));
  if (label === 1) {
    lines.push(
      certain
        ? r.pick(['诊断：结肠息肉（已切除）。', `诊断：结肠${findings.length > 1 ? '多发' : ''}息肉。`])
        : '诊断：结肠隆起，息肉可能，待病理。',
    );
  } else lines.push(r.pick(['诊断：结肠镜检查未见异常。', '诊断：未见息肉。']));
  return { text: lines.join(r.bool(0.5) ? '' : '\n'), certain };
}
