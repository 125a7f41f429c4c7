// Register-blocked matmul: each invocation computes a TM x (4*TN4) block of C with no shared
// memory and no barriers. Same uniforms and semantics as matmul-naive.wgsl (batch broadcasting
// through per-batch strides, transposes through sam/sak/sbk/sbn). Rows and columns past the edge
// are clamped to the last one (loads stay in range, the inner loop has no branches) and their
// results are not stored. On a CPU Vulkan driver loads dominate, so the lever is arithmetic per
// load: TM + 4*TN4 loads feed 4*TM*TN4 multiply-adds per k.
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

const TM = {{TM}}u;
const TN4 = {{TN4}}u;

@compute @workgroup_size({{WGX}}, {{WGY}})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r0 = gid.y * TM;
  let c0 = gid.x * TN4 * 4u;
  let bi = gid.z;
  if (r0 >= u.m || c0 >= u.n || bi >= u.batch) { return; }
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
  var ra: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { ra[i] = oa + min(r0 + i, u.m - 1u) * u.sam; }
  var cb: array<vec4<u32>, TN4>;
  for (var j = 0u; j < TN4; j++) {
    cb[j] = ob + min(vec4u(c0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(u.n - 1u)) * u.sbn;
  }
  var acc: array<vec4<f32>, TM * TN4>;
  for (var k = 0u; k < u.k; k++) {
    let ka = k * u.sak;
    let kb = k * u.sbk;
    var bv: array<vec4<f32>, TN4>;
    for (var j = 0u; j < TN4; j++) {
      let o = cb[j] + kb;
      bv[j] = vec4f(f32(b[o.x]), f32(b[o.y]), f32(b[o.z]), f32(b[o.w]));
    }
    for (var i = 0u; i < TM; i++) {
      let av = f32(a[ra[i] + ka]);
      for (var j = 0u; j < TN4; j++) { acc[i * TN4 + j] += av * bv[j]; }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let r = r0 + i;
    if (r >= u.m) { break; }
    for (var j = 0u; j < TN4; j++) {
      for (var l = 0u; l < 4u; l++) {
        let col = c0 + 4u * j + l;
        let o = oc + r * u.scm + col * u.scn;
        if (col < u.n) { c[o] = {{ROUND}}(epilogue(u.alpha * acc[i * TN4 + j][l], r, col, o)); }
      }
    }
  }
}

{{ROUND_F16}}
