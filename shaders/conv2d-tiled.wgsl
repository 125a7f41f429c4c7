// conv2d as an implicit GEMM with shared-memory tiles, for GPUs. Per group g:
//   out[co, p] = sum_k W[co, k] * X[k, p],  k = (ci, ky, kx) over cig*kh*kw, p = (b, oy, ox),
// where X[k, p] is the input tap read on the fly (no im2col buffer). A workgroup of 256
// invocations computes a 64 (channels) x 64 (pixels) tile; each invocation 4 x 4 outputs spaced
// 16 apart (conflict-free shared reads, coalesced stores). K advances 16 at a time through
// 2 x 4 KiB of workgroup memory. Same uniforms and semantics as conv2d-direct.wgsl.
// Element type: T (x and weight) is f32, or f16 under autocast (ENABLE turns it on); sums are f32
// either way, and with f16 operands each result (bias included) is rounded to f16 (ROUND) and
// stored widened to f32 (engine/ops/conv-kernels.ts).
{{ENABLE}}
struct U { n: u32, cin: u32, h: u32, w: u32, cout: u32, oh: u32, ow: u32, groups: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: i32, pw: i32, dh: u32, dw: u32, hasBias: u32, splits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> wt: array<{{T}}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const BM = 64u;
const BN = 64u;
const BK = 16u;
var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let plane = u.oh * u.ow;
  let npix = u.n * plane;
  let cig = u.cin / u.groups;
  let cog = u.cout / u.groups;
  let kk = u.kh * u.kw;
  let K = cig * kk;
  let hw = u.h * u.w;
  let g = wid.z;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  // This invocation loads pixel column `bcol` of the X tile (rows brow + 4r) ...
  let bcol = t % BN;
  let brow = t / BN;
  let p = n0 + bcol;
  let pc = min(p, npix - 1u);
  let pr = pc % plane;
  let xb = ((pc / plane) * u.cin + g * cig) * hw;
  let iy0 = i32((pr / u.ow) * u.sh) - u.ph;
  let ix0 = i32((pr % u.ow) * u.sw) - u.pw;
  // ... and k column `acol` of the W tile (rows arow + 16r).
  let acol = t % BK;
  let arow = t / BK;
  let tx = t % 16u;
  let ty = t / 16u;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var r = 0u; r < 4u; r++) {
      let m = arow + 16u * r;
      let gk = k0 + acol;
      var v = 0.0;
      if (m0 + m < cog && gk < K) { v = f32(wt[(g * cog + m0 + m) * K + gk]); }
      As[acol * BM + m] = v;
    }
    for (var r = 0u; r < 4u; r++) {
      let k = brow + 4u * r;
      let gk = k0 + k;
      let ci = gk / kk;
      let rk = gk % kk;
      let iy = iy0 + i32((rk / u.kw) * u.dh);
      let ix = ix0 + i32((rk % u.kw) * u.dw);
      var v = 0.0;
      if (p < npix && gk < K && iy >= 0 && iy < i32(u.h) && ix >= 0 && ix < i32(u.w)) {
        v = f32(x[xb + ci * hw + u32(iy) * u.w + u32(ix)]);
      }
      Bs[k * BN + bcol] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let b = vec4f(Bs[k * BN + tx], Bs[k * BN + tx + 16u], Bs[k * BN + tx + 32u], Bs[k * BN + tx + 48u]);
      for (var i = 0u; i < 4u; i++) { acc[i] += As[k * BM + ty + 16u * i] * b; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 16u * i;
    if (m >= cog) { continue; }
    let co = g * cog + m;
    var bv = 0.0;
    if (u.hasBias != 0u) { bv = bias[co]; }
    for (var j = 0u; j < 4u; j++) {
      let q = n0 + tx + 16u * j;
      if (q < npix) { out[((q / plane) * u.cout + co) * plane + q % plane] = {{ROUND}}(acc[i][j] + bv); }
    }
  }
}

{{ROUND_F16}}
