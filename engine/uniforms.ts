// The uniform contract between an op and its shader, checked once per pipeline: the words an op
// packs (ops/kernel.ts Params records each word's kind, and the field name the op gives it) must
// land on the fields of the shader's `struct U` at their WGSL offsets, under the same names (vec4
// and arrays of vec4 aligned to 16 bytes, scalars to 4), with
// a float where the shader reads a float and an integer where it reads an integer, and every
// field must be written. A mismatch is an error naming the op, the shader and the field, instead
// of a kernel that silently reads the wrong numbers (a field type it does not model, e.g. a matrix,
// leaves that shader unchecked rather than failing it). Reference: WGSL spec, "Memory layout"
// (alignment and size of u32/i32/f32, vec4<T>, array<E, N> in the uniform address space).

/** One 4-byte word of a uniform block: 'u' u32, 'i' i32, 'f' f32. */
export type UniformWord = 'u' | 'i' | 'f';

interface FieldWord {
  field: string;
  offset: number;
  kind: UniformWord;
}

const SCALAR: Record<string, UniformWord> = { u32: 'u', i32: 'i', f32: 'f' };

/**
 * The words of `struct <name>` (default U) in a filled shader, by byte offset; null if the shader
 * has no such struct, or uses a field type this check does not model (then it goes unchecked).
 */
export function uniformWords(code: string, struct = 'U'): FieldWord[] | null {
  const m = new RegExp(`struct\\s+${struct}\\s*\\{([^}]*)\\}`).exec(code.replace(/\/\/.*$/gm, ''));
  if (!m) return null;
  const out: FieldWord[] = [];
  let offset = 0;
  for (const decl of m[1]
    .split(/,(?![^<]*>)/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [, field, type] = /^(\w+)\s*:\s*(.+)$/.exec(decl) ?? [];
    if (!field) return null;
    const t = type.replace(/\s+/g, '');
    let kinds: UniformWord[];
    let align = 4;
    const vec = /^vec([24])<(u32|i32|f32)>$/.exec(t),
      arr = /^array<vec4<(u32|i32|f32)>,(\d+)>$/.exec(t);
    if (SCALAR[t]) kinds = [SCALAR[t]];
    else if (vec) {
      kinds = Array(Number(vec[1])).fill(SCALAR[vec[2]]);
      align = 4 * Number(vec[1]);
    } else if (arr) {
      kinds = Array(4 * Number(arr[2])).fill(SCALAR[arr[1]]);
      align = 16;
    } else return null;
    offset = Math.ceil(offset / align) * align;
    kinds.forEach((kind, i) => out.push({ field, offset: offset + 4 * i, kind }));
    offset += 4 * kinds.length;
  }
  return out;
}

const NAME: Record<UniformWord, string> = { u: 'u32', i: 'i32', f: 'f32' };

/**
 * Throws if the packed words do not match the shader's `struct U`. `names[i]` is the field the op
 * says word i belongs to (undefined for a word packed without a name: then only its offset and kind
 * are checked).
 */
export function checkUniforms(
  op: string,
  shader: string,
  code: string,
  words: readonly UniformWord[],
  names: readonly (string | undefined)[] = [],
): void {
  const fields = uniformWords(code);
  const where = `${op} (${shader}.wgsl)`;
  if (!fields) return;
  const at = new Map(fields.map((w) => [w.offset, w]));
  const declared = new Set(fields.map((f) => f.field));
  words.forEach((kind, i) => {
    const f = at.get(4 * i),
      name = names[i];
    if (name !== undefined && !declared.has(name))
      throw new Error(`${where}: the op packs uniform '${name}', which struct U has no field for`);
    if (!f)
      throw new Error(
        `${where}: uniform word ${i} (byte ${4 * i}, ${NAME[kind]}) falls on no field of struct U ` +
          `(padding or past its end)`,
      );
    if (name !== undefined && name !== f.field)
      throw new Error(
        `${where}: the op packs uniform '${name}' at byte ${4 * i}, ` +
          `where struct U has field '${f.field}' (fields out of order)`,
      );
    // u32 and i32 share their bit pattern for the values sizes and offsets take; float vs integer never does.
    if ((f.kind === 'f') !== (kind === 'f'))
      throw new Error(
        `${where}: uniform field '${f.field}' (byte ${f.offset}) is ${NAME[f.kind]} in the shader, ` +
          `but the op packs a ${NAME[kind]}`,
      );
  });
  const missing = fields.find((f) => f.offset >= 4 * words.length);
  if (missing)
    throw new Error(
      `${where}: uniform field '${missing.field}' (byte ${missing.offset}) is not packed by the op ` +
        `(${words.length} words given)`,
    );
}

/**
 * Byte offset of each named f32 field of `struct <struct>` (a per-element table in a storage
 * buffer, e.g. the optimizers' hyperparameter rows), checked against the names the op writes: a
 * name the struct lacks, a field the op does not write, or a non-f32 field is an error naming the
 * op, the shader and the field. Returns the offsets in words and the row length in words.
 */
export function rowLayout(
  op: string,
  shader: string,
  code: string,
  struct: string,
  names: readonly string[],
): { offsets: Map<string, number>; words: number } {
  const where = `${op} (${shader}.wgsl)`;
  const fields = uniformWords(code, struct);
  if (!fields) throw new Error(`${where}: no struct ${struct} of scalars and vectors in the shader`);
  const offsets = new Map<string, number>();
  for (const f of fields) {
    if (f.kind !== 'f') throw new Error(`${where}: field '${f.field}' of struct ${struct} is ${NAME[f.kind]}, not f32`);
    if (!offsets.has(f.field)) offsets.set(f.field, f.offset / 4);
  }
  for (const n of names)
    if (!offsets.has(n)) throw new Error(`${where}: the op writes '${n}', which struct ${struct} has no field for`);
  for (const f of offsets.keys())
    if (!names.includes(f)) throw new Error(`${where}: field '${f}' of struct ${struct} is not written by the op`);
  // An array<S> of f32-only structs has a stride of 4 bytes per field (WGSL: size rounded to align 4).
  return { offsets, words: fields.length };
}
