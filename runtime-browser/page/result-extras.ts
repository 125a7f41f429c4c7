// The parts of a result beside the model's output: the out-of-domain hint (domain.ts), the Dice /
// IoU against a loaded ground-truth mask (outputs.ts), and the numbers the JSON download holds.
import { $ } from './render.ts';
import { domainCheck, Z_LIMIT, CONFIDENCE_LIMIT, type DomainCheck, type InputStats } from './domain.ts';
import { scoreAgainst, stem } from './outputs.ts';
import type { Segmentation } from './infer.ts';
import type { RgbaImage } from './preprocess.ts';
import type { PageState } from './state.ts';

/** Shows the out-of-domain hint when the image's statistics or the classifier's confidence call for it. */
export function showDomain(
  pixels: RgbaImage,
  topProbability: number | null,
  stats: InputStats | undefined,
): DomainCheck {
  const d = domainCheck(pixels, stats, topProbability);
  const why = [
    ...(d.far.length
      ? [
          `its colour statistics are far from the ${stats!.count} training frames ` +
            `(${d.far.join(', ')}; more than ${Z_LIMIT} sd)`,
        ]
      : []),
    ...(d.lowConfidence
      ? [`the model's top probability is ${(100 * topProbability!).toFixed(0)}%, under ${100 * CONFIDENCE_LIMIT}%`]
      : []),
  ];
  $('ood-hint').hidden = !why.length;
  $('ood-hint').textContent = why.length ? `Out-of-domain hint: ${why.join('; and ')}. Do not trust this answer.` : '';
  return d;
}

/** Dice / IoU of a mask against a ground-truth mask image at `threshold`, shown under the result. */
export function showScore(
  truth: { name: string; pixels: RgbaImage },
  seg: Segmentation,
  threshold: number,
): NonNullable<PageState['truth']> {
  const { dice, iou } = scoreAgainst(seg.prob, seg.size, truth.pixels, threshold);
  $('gt-score').innerHTML =
    `Dice <b id="gt-dice">${dice.toFixed(3)}</b> · IoU <b id="gt-iou">${iou.toFixed(3)}</b> ` +
    `<span class="dim">(${truth.name.replace(/[&<>"]/g, '')}, > ${threshold.toFixed(2)})</span>`;
  return { name: truth.name, width: truth.pixels.width, height: truth.pixels.height, threshold, dice, iou };
}

/** The shown result's numbers for the JSON download: the image and model it belongs to, and the values. */
export function resultNumbers(
  state: PageState,
  picture: { name: string; pixels: RgbaImage },
  threshold: number,
): { json: object; stem: string } | null {
  const r = state.result;
  if (!r) return null;
  const model = {
    source: state.model?.source,
    kind: state.model?.kind,
    card: state.model?.card?.title ?? null,
    untrained: state.model?.untrained,
  };
  const { kind, for: computedFor, ...rest } = r;
  return {
    stem: stem(picture.name),
    json: {
      image: { ...computedFor, width: picture.pixels.width, height: picture.pixels.height },
      model,
      kind,
      threshold,
      truth: state.truth,
      ...rest,
    },
  };
}
