// Shared-memory tiled matmul for GPUs: a 16x16 workgroup computes a 64x64 tile of C, each
// invocation a 4x4 block (rows ty + 16i, columns tx + 16j, so neighbouring invocations touch
// neighbouring addresses). Per K-step of 16 the workgroup stages a 64x16 tile of A and a 16x64
// tile of B in workgroup memory (8.3 KiB), zero-filled past the edges. Each tile is loaded with
// consecutive invocations walking whichever of its two dims has the smaller stride, so both
// plain and transposed operands load coalesced. Same uniforms and semantics as matmul-naive.wgsl.
// Correct on CPU drivers too, where barriers make it slow (matmul-blocked.wgsl is chosen there).
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

const T = 64u;   // tile rows and columns
const BK = 16u;  // K-step
const P = 65u;   // padded row pitch of the staged tiles (avoids bank conflicts on stores)
var<workgroup> As: array<{{T}}, 1040>;  // [BK][P], As[kk * P + row]
var<workgroup> Bs: array<{{T}}, 1040>;  // [BK][P], Bs[kk * P + col]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r0 = wid.y * T;
  let c0 = wid.x * T;
  let bi = wid.z;
  let t = lid.y * 16u + lid.x;
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
  let afastk = u.sak <= u.sam;
  let bfastn = u.sbn <= u.sbk;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < u.k; k0 += BK) {
    for (var q = 0u; q < 4u; q++) {
      let e = t + 256u * q;
      let ar = select(e % T, e / BK, afastk);
      let ak = select(e / T, e % BK, afastk);
      var av = {{T}}(0.0);
      if (r0 + ar < u.m && k0 + ak < u.k) { av = a[oa + (r0 + ar) * u.sam + (k0 + ak) * u.sak]; }
      As[ak * P + ar] = av;
      let bn = select(e / BK, e % T, bfastn);
      let bk = select(e % BK, e / T, bfastn);
      var bv = {{T}}(0.0);
      if (c0 + bn < u.n && k0 + bk < u.k) { bv = b[ob + (k0 + bk) * u.sbk + (c0 + bn) * u.sbn]; }
      Bs[bk * P + bn] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let bv = vec4f(vec4<{{T}}>(Bs[kk * P + lid.x], Bs[kk * P + lid.x + 16u], Bs[kk * P + lid.x + 32u],
                                 Bs[kk * P + lid.x + 48u]));
      for (var i = 0u; i < 4u; i++) { acc[i] += f32(As[kk * P + lid.y + 16u * i]) * bv; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + lid.y + 16u * i;
    if (r >= u.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = c0 + lid.x + 16u * j;
      let o = oc + r * u.scm + col * u.scn;
      if (col < u.n) { c[o] = {{ROUND}}(epilogue(u.alpha * acc[i][j], r, col, o)); }
    }
  }
}

{{ROUND_F16}}
