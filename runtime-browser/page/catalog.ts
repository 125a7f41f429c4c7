// What the page offers to load: each served .safetensors file described from its header alone
// (which model, whether its weights are a random initialisation), files that are not a servable
// model left out with the reason (an EVA-02 pre-training checkpoint has no classification head; a
// SAM decoder written apart from its backbone cannot run alone), and the model card that may sit
// next to a checkpoint (<name>.card.json: what it was trained on, the command that reproduces it,
// its test scores, size and date). serve.ts builds the list; the page labels its options with it.
// No DOM, no Node modules.
import { readHeader, detectKind, MODEL_NAMES, type ModelKind } from './infer.ts';
import { isUntrained } from './endoked.ts';
import type { InputStats } from './domain.ts';

export interface ModelCard {
  title: string;
  task: string;
  trainedOn: string;
  /** The exact command that reproduces the checkpoint, from the repository root. */
  command: string;
  /** Test-set scores as the recipe reported them (metric name -> value), and where. */
  scores: Record<string, number>;
  scoresOn: string;
  bytes: number;
  sha256: string;
  date: string;
  notes?: string[];
  /** The training frames' input statistics, for the out-of-domain hint (page/domain.ts). */
  inputStats?: InputStats;
  /** Loaded when the page opens, on the bundled sample titled `sample`. */
  default?: boolean;
  sample?: string;
}

export interface CatalogEntry {
  url: string;
  bytes: number;
  kind: ModelKind;
  untrained: boolean;
  card?: ModelCard;
  cardError?: string;
}

type Header = NonNullable<ReturnType<typeof readHeader>>;

/** The model a checkpoint header is for and whether it is untrained, or why it cannot be served. */
export function describeHeader(header: Header | null): { kind: ModelKind; untrained: boolean } | { skip: string } {
  if (!header) return { skip: 'not a readable safetensors file' };
  const { keys, metadata } = header;
  if (keys.some((k) => k.startsWith('mask_decoder.')))
    return { skip: 'a SAM decoder without its image backbone (join it with make-demo-assets.ts --sam-bundle)' };
  const kind = detectKind(header);
  if (!kind) return { skip: 'not an EVA-02, Polyp-PVT, ToCo or SAM box-prompt checkpoint' };
  if (kind === 'eva02') {
    let classes: unknown = keys.includes('head.weight') ? 1 : 0;
    try {
      if (metadata.config) classes = (JSON.parse(metadata.config) as { numClasses?: unknown }).numClasses;
    } catch {
      /* the header check above decides */
    }
    if (!(typeof classes === 'number' && classes >= 1))
      return { skip: 'an EVA-02 without a classification head (a pre-training checkpoint)' };
  }
  return { kind, untrained: isUntrained(metadata) };
}

/** The option text: title (or file name), model, "untrained" where it is, size. */
export function entryLabel(e: CatalogEntry, fmtBytes: (n: number) => string): string {
  const name = e.card?.title ?? e.url.split('/').pop()!;
  const trained = e.untrained ? ' · untrained (random weights)' : e.card ? '' : ' · no model card';
  return `${name} · ${MODEL_NAMES[e.kind]}${trained} · ${fmtBytes(e.bytes)}`;
}

/** Checks a card's fields (a card that lies about its file is worse than none). */
export function checkCard(v: unknown, bytes: number): ModelCard {
  const c = v as Partial<ModelCard>;
  const str = (k: keyof ModelCard) => {
    if (typeof c[k] !== 'string' || !(c[k] as string).length) throw new Error(`"${k}" must be a non-empty string`);
  };
  (['title', 'task', 'trainedOn', 'command', 'scoresOn', 'sha256', 'date'] as const).forEach(str);
  if (!c.scores || typeof c.scores !== 'object' || !Object.values(c.scores).every((x) => typeof x === 'number'))
    throw new Error('"scores" must map metric names to numbers');
  if (c.bytes !== bytes) throw new Error(`"bytes" is ${c.bytes}, the checkpoint has ${bytes}`);
  return c as ModelCard;
}

/** Cards first (the default first), then other trained checkpoints, untrained ones last; by URL within. */
export function sortCatalog(list: CatalogEntry[]): CatalogEntry[] {
  const rank = (e: CatalogEntry) => (e.card?.default ? 0 : e.card && !e.untrained ? 1 : e.untrained ? 3 : 2);
  return [...list].sort((a, b) => rank(a) - rank(b) || a.url.localeCompare(b.url));
}
