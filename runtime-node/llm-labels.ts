// An LLM report labeller over an OpenAI-compatible chat-completions endpoint (llama.cpp's
// llama-server, Ollama, vLLM, ...): EndoKED stage 1 with a language model, as the paper does
// (spec §2.1; its prompt is unpublished, so the prompt here is this project's own).
//
// One request per report: a fixed system prompt, the report as the user message, temperature 0.
// The answer must be one JSON object {"label": 1 | 0 | "uncertain", "evidence": "<phrase>"}
// (code fences and text around the object are tolerated; anything else is malformed). Network
// errors, timeouts, HTTP 429/5xx and malformed answers are retried with exponential backoff;
// other HTTP errors fail at once. Every error names the endpoint URL.
import type { ReportDecision, ReportLabeller, ReportLabelValue } from '../engine/data/index.ts';

export const LLM_SYSTEM_PROMPT = [
  'You label colonoscopy reports (English or Chinese) for one question: did THIS examination find at least one ' +
    'polyp (adenoma, serrated lesion, polypoid lesion; a polyp removed during this examination counts)?',
  'Rules:',
  '- Negated findings ("no polyps", "未见息肉") are not polyps.',
  '- History, indications and previous polypectomies ("history of polyps", "surveillance after polypectomy, no ' +
    'recurrence", "息肉切除术后复查") are not findings of this examination.',
  '- Findings that proved to be something else (a fold, stool, pseudopolyps, "假性息肉") are not polyps.',
  '- A polyp that was seen but not removed ("polypectomy not required", "无需切除") is a polyp.',
  '- Hedged findings ("possible polyp", "probably a polyp", "考虑息肉", "可能为息肉") and unconfirmed suspicions ' +
    'are "uncertain".',
  'Answer with one JSON object and nothing else: ' +
    '{"label": 1 | 0 | "uncertain", "evidence": "<the shortest phrase copied from the report that decided>"}',
].join('\n');

export interface LlmOptions {
  /** Server base URL (http://host:port, .../v1) or the full .../chat/completions URL. */
  url: string;
  model: string;
  /** Per request (default 60 s). */
  timeoutMs?: number;
  /** Extra attempts after the first (default 3). */
  retries?: number;
  /** First backoff; doubled after each failed attempt (default 500 ms). */
  backoffMs?: number;
  /** Maximum tokens of the answer (default 200). */
  maxTokens?: number;
}

/** The chat-completions URL for a base URL: http://h:p -> http://h:p/v1/chat/completions. */
export function chatCompletionsUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--llm-url "${url}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`--llm-url "${url}" must be http:// or https://`);
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = path.endsWith('/chat/completions')
    ? path
    : path.endsWith('/v1')
      ? `${path}/chat/completions`
      : `${path}/v1/chat/completions`;
  return u.toString();
}

/** The server could not be reached at all (the fix is --llm-url or starting the server). */
export class LlmUnreachable extends Error {
  override name = 'LlmUnreachable';
}

/** A malformed answer (retried). */
export class MalformedAnswer extends Error {
  override name = 'MalformedAnswer';
}

/** Parses and validates the model's answer text. */
export function parseLlmAnswer(content: string): ReportDecision {
  const start = content.indexOf('{'),
    end = content.lastIndexOf('}');
  if (start < 0 || end < start)
    throw new MalformedAnswer(`no JSON object in the answer ${JSON.stringify(content.slice(0, 120))}`);
  let obj: unknown;
  try {
    obj = JSON.parse(content.slice(start, end + 1));
  } catch (e) {
    throw new MalformedAnswer(
      `answer is not valid JSON (${(e as Error).message}): ${JSON.stringify(content.slice(0, 120))}`,
    );
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new MalformedAnswer('answer is not a JSON object');
  const { label: raw, evidence } = obj as Record<string, unknown>;
  let label: ReportLabelValue;
  if (raw === 1 || raw === '1' || raw === 'polyp' || raw === true) label = 1;
  else if (raw === 0 || raw === '0' || raw === 'no_polyp' || raw === 'none' || raw === false) label = 0;
  else if (raw === 'uncertain') label = 'uncertain';
  else throw new MalformedAnswer(`"label" is ${JSON.stringify(raw)}, not 1, 0 or "uncertain"`);
  if (typeof evidence !== 'string')
    throw new MalformedAnswer(`"evidence" is ${JSON.stringify(evidence)}, not a string`);
  // An uncertain answer carries no guess from the model; 1 matches how EndoKED's hedged reports lean.
  return { label, evidence: evidence.trim().slice(0, 300), guess: label === 'uncertain' ? 1 : label };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why a fetch failed, in words (undici puts the system error in `cause`). */
function describeFetchError(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.cause?.code) return `${err.cause.code}${err.cause.message ? ` (${err.cause.message})` : ''}`;
  if (err?.cause?.message) return `${err.message} (${err.cause.message})`;
  return err?.message ?? String(e);
}

export class LlmLabeller implements ReportLabeller {
  readonly name: string;
  readonly endpoint: string;
  private readonly o: Required<LlmOptions>;

  constructor(opts: LlmOptions) {
    if (!opts.model) throw new Error('the LLM labeller needs a model name (--llm-model)');
    this.endpoint = chatCompletionsUrl(opts.url);
    this.o = { timeoutMs: 60_000, retries: 3, backoffMs: 500, maxTokens: 200, ...opts };
    this.name = `llm:${opts.model}`;
  }

  /** One attempt: the decision, or an error saying whether a retry may help. */
  private async once(report: string): Promise<ReportDecision> {
    const body = {
      model: this.o.model,
      temperature: 0,
      max_tokens: this.o.maxTokens,
      stream: false,
      messages: [
        { role: 'system', content: LLM_SYSTEM_PROMPT },
        { role: 'user', content: `Report:\n${report}` },
      ],
    };
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (e) {
      const name = (e as Error)?.name;
      if (name === 'TimeoutError' || name === 'AbortError')
        throw Object.assign(new Error(`timed out after ${this.o.timeoutMs} ms`), { retry: true });
      throw Object.assign(new Error(`unreachable: ${describeFetchError(e)}`), { retry: true, unreachable: true });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      const name = (e as Error)?.name,
        timedOut = name === 'TimeoutError' || name === 'AbortError';
      throw Object.assign(
        new Error(
          timedOut
            ? `timed out after ${this.o.timeoutMs} ms (reading the response)`
            : `reading the response failed: ${describeFetchError(e)}`,
        ),
        { retry: true },
      );
    }
    if (!res.ok) {
      throw Object.assign(new Error(`HTTP ${res.status} ${res.statusText}: ${text.slice(0, 200)}`), {
        retry: res.status === 429 || res.status >= 500,
      });
    }
    let content: unknown;
    try {
      content = (JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message
        ?.content;
    } catch {
      throw Object.assign(new MalformedAnswer(`response is not chat-completions JSON: ${text.slice(0, 120)}`), {
        retry: true,
      });
    }
    if (typeof content !== 'string')
      throw Object.assign(new MalformedAnswer(`response has no choices[0].message.content: ${text.slice(0, 120)}`), {
        retry: true,
      });
    try {
      return parseLlmAnswer(content);
    } catch (e) {
      throw Object.assign(e as Error, { retry: true });
    }
  }

  async label(report: string): Promise<ReportDecision> {
    let last: Error & { retry?: boolean; unreachable?: boolean } = new Error('no attempt');
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) await sleep(this.o.backoffMs * 2 ** (attempt - 1));
      try {
        return await this.once(report);
      } catch (e) {
        last = e as typeof last;
        if (!last.retry) break;
      }
    }
    const n = this.o.retries + 1;
    if (last.unreachable) {
      throw new LlmUnreachable(
        `LLM endpoint ${this.endpoint} is unreachable after ${n} attempt(s): ` +
          `${last.message.replace(/^unreachable: /, '')}. Is the server running? Check --llm-url (e.g. ` +
          `http://127.0.0.1:8080 for llama-server, http://127.0.0.1:11434 for Ollama).`,
      );
    }
    throw new Error(`LLM endpoint ${this.endpoint}: ${last.message}${last.retry ? ` (after ${n} attempt(s))` : ''}`);
  }
}
