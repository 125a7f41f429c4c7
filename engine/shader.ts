// Shader templating, kept trivial on purpose: `{{NAME}}` is replaced from a flat record.
// A key the template lacks, or a placeholder the record lacks, is an error: a variant that
// needs logic is another .wgsl file, not a smarter template.

const PLACEHOLDER = /\{\{([A-Z0-9_]+)\}\}/g;

export function fillTemplate(text: string, params: Record<string, string | number>, name = 'shader'): string {
  const used = new Set<string>();
  const out = text.replace(PLACEHOLDER, (_, key: string) => {
    if (!(key in params)) throw new Error(`${name}.wgsl: placeholder {{${key}}} has no value`);
    used.add(key);
    return String(params[key]);
  });
  for (const key of Object.keys(params)) {
    if (!used.has(key)) throw new Error(`${name}.wgsl: parameter '${key}' is not used by the template`);
  }
  return out;
}
