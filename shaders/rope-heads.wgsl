// Splits a packed qkv projection [B, N, 3, H, D] into heads-major q and k [B, H, N, D] (and v
// when parts = 3) in one pass, applying the interleaved rotary embedding to q and k (as
// rope.wgsl: y = x * cos + rot(x) * sin, rot([x0, x1, ...]) = [-x1, x0, ...]; token t >= start
// uses table row t - start, earlier tokens pass through) and multiplying q by `qscale` (the
// attention scale, folded in here so the scores need no multiply of their own). One invocation
// per pair (2p, 2p + 1) of the outputs, in output order so the writes are contiguous.
// hasRope = 0 skips the rotation (the tables are then unused).
struct U { pairs: u32, perPart: u32, n: u32, heads: u32, d: u32, start: u32, hasRope: u32, qscale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> sinT: array<f32>;
@group(0) @binding(3) var<storage, read> cosT: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.pairs) { return; }
  let half = u.d / 2u;
  let e = 2u * (i % half); // element within the head
  let part = i / u.perPart; // 0 q, 1 k, 2 v
  let r = (i % u.perPart) / half; // heads-major row: (b * H + h) * N + tok
  let tok = r % u.n;
  let bh = r / u.n;
  let b = bh / u.heads;
  let h = bh % u.heads;
  let inner = u.heads * u.d;
  let src = ((b * u.n + tok) * 3u + part) * inner + h * u.d + e;
  var x0 = x[src];
  var x1 = x[src + 1u];
  let dst = r * u.d + e;
  if (part == 2u) {
    v[dst] = x0;
    v[dst + 1u] = x1;
    return;
  }
  if (u.hasRope != 0u && tok >= u.start) {
    let t = (tok - u.start) * u.d + e;
    let y0 = x0 * cosT[t] - x1 * sinT[t];
    let y1 = x1 * cosT[t + 1u] + x0 * sinT[t + 1u];
    x0 = y0;
    x1 = y1;
  }
  if (part == 0u) {
    q[dst] = x0 * u.qscale;
    q[dst + 1u] = x1 * u.qscale;
  } else {
    k[dst] = x0;
    k[dst + 1u] = x1;
  }
}
