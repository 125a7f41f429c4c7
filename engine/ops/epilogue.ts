// Fused matmul epilogues: work applied to each output value as the matmul kernel stores it, so a
// bias add costs no extra pass over the output (a separate add reads and writes [M, N] again, and
// on CPU drivers such memory-bound glue was ~40% of a ViT step's kernel time; issue 17).
//
// How it works: every matmul shader (matmul-naive/blocked/tiled.wgsl) stores through
//   fn epilogue(v: f32, row: u32, col: u32, i: u32) -> f32 { return {{EPILOGUE}}; }
// where v is the finished dot product for output (row, col) of the current batch and i its index
// in c; the epilogue's tensors are bound after a and b as e0, e1, ... ({{EPILOGUE_INPUTS}}), which
// moves c's binding to {{OUT}}.
//
// How to add an epilogue (say a residual add, out = a @ b + r with r shaped like the output):
// 1. add an entry to EPILOGUES: `residual: { inputs: 1, expr: 'v + e0[i]' }` (an expression in v,
//    row, col, i and the e* arrays; WGSL builtins only, the matmul shaders have no helpers);
// 2. pass `{ name: 'residual', inputs: [r] }` as `epilogue` to matmulKernel from the op that wants
//    it (see linear() in matmul.ts), checking the operand's shape there;
// 3. give that op's backward the maths of the unfused composite (a residual's gradient is dy
//    itself), and test forward and backward against PyTorch (test/engine/matmul-kernels.test.ts
//    runs every kernel with each epilogue).
import type { Tensor } from '../tensor.ts';

export const EPILOGUES = {
  none: { inputs: 0, expr: 'v' },
  /** bias [n] added to every row: nn.Linear. */
  bias: { inputs: 1, expr: 'v + e0[col]' },
} satisfies Record<string, { inputs: number; expr: string }>;

export type EpilogueName = keyof typeof EPILOGUES;

export interface Epilogue {
  name: EpilogueName;
  inputs: Tensor[];
}

/** The template values of an epilogue for a matmul shader whose a and b are bindings 1 and 2. */
export function epilogueParams(e: Epilogue | undefined): Record<string, string | number> {
  const def = EPILOGUES[e?.name ?? 'none'];
  const inputs = e?.inputs ?? [];
  if (inputs.length !== def.inputs)
    throw new Error(`matmul epilogue '${e?.name}': expected ${def.inputs} tensors, got ${inputs.length}`);
  const decl = inputs.map((_, j) => `@group(0) @binding(${3 + j}) var<storage, read> e${j}: array<f32>;`);
  return { EPILOGUE_INPUTS: decl.join('\n'), OUT: 3 + inputs.length, EPILOGUE: def.expr };
}
