// Reference matmul: one invocation per output element. C[b] = op(A[b]) @ op(B[b]), where op
// transposes through strides (sam/sak, sbk/sbn), and batch indices broadcast through per-input
// batch strides (0 on a broadcast dimension). Every faster matmul is checked against this one.
// Operands and output are read and written through element offsets and strides (offa, offb;
// offc, bsc, scm, scn), so heads may be views of a token-major projection and results may land
// token-major or in one half of a packed gradient; alpha scales the product (1: unchanged).
// Element type: the template's T is f32, or f16 under autocast (ENABLE then turns on f16); products
// and sums are f32 either way, and an f16 result is rounded to f16 (ROUND = round_f16) and stored
// widened to f32, for the f32 ops that read it (engine/ops/autocast.ts).
{{ENABLE}}
struct U {
  bshape: vec4<u32>, bsa: vec4<u32>, bsb: vec4<u32>, bsc: vec4<u32>,
  batch: u32, m: u32, n: u32, k: u32, sam: u32, sak: u32, sbk: u32, sbn: u32,
  offa: u32, offb: u32, offc: u32, scm: u32, scn: u32, alpha: f32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<{{T}}>;
@group(0) @binding(2) var<storage, read> b: array<{{T}}>;
{{EPILOGUE_INPUTS}}
@group(0) @binding({{OUT}}) var<storage, read_write> c: array<f32>;

// Applied to each output as it is stored: v unchanged, or a fused bias add (engine/ops/epilogue.ts).
fn epilogue(v: f32, row: u32, col: u32, i: u32) -> f32 { return {{EPILOGUE}}; }

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let row = gid.y;
  let bi = gid.z;
  if (row >= u.m || col >= u.n || bi >= u.batch) { return; }
  var rem = bi;
  var oa = u.offa;
  var ob = u.offb;
  var oc = u.offc;
  for (var d = 3; d >= 0; d--) {
    let s = u.bshape[d];
    oa += (rem % s) * u.bsa[d];
    ob += (rem % s) * u.bsb[d];
    oc += (rem % s) * u.bsc[d];
    rem = rem / s;
  }
  var acc = 0.0;
  for (var k = 0u; k < u.k; k++) {
    acc += f32(a[oa + row * u.sam + k * u.sak]) * f32(b[ob + k * u.sbk + col * u.sbn]);
  }
  let i = oc + row * u.scm + col * u.scn;
  c[i] = {{ROUND}}(epilogue(u.alpha * acc, row, col, i));
}

{{ROUND_F16}}
