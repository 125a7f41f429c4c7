// Fused scaled-dot-product attention, forward (flash-attention style, Dao et al. 2022):
// O = softmax(scale * Q K^T + mask) V with keys visited in blocks of 8 and an online softmax
// (running max m, running denominator l per row), so the Lq x Lk score matrix never exists.
// Also writes each row's logsumexp (m + log l) for the backward pass.
//
// Built for CPU drivers first (PLATFORM.md: loads dominate, barriers are costly): no workgroup
// memory and no barriers. Each invocation owns R query rows, so every key/value vec4 it loads
// feeds R rows (the key rows are the same across a workgroup: uniform loads, broadcasts on a
// GPU); the output rows are the accumulators (rescaled in place), so no private array is
// indexed by the head dim (CPU drivers lower such indexing to select ladders). Head dims are
// multiples of 4 (rows are vec4s). Function-scope arrays are initialised explicitly: a bare
// `var a: array<...>;` inside a loop was not re-zeroed per iteration on Dawn + lavapipe.
// The mask is additive and read through broadcast strides (b, h, i, j); 0 strides broadcast.
// q, k, v and o are read through layouts (offset, batch, head and row strides, in vec4s; rows
// are contiguous), so heads can be views of a packed [B, N, 3, H, D] projection and the output
// can be written token-major [B, N, H, Dv] (engine/ops/attention-packed.ts); lse is [B, H, Lq].
struct U { mstride: vec4<u32>, ql: vec4<u32>, kl: vec4<u32>, vl: vec4<u32>, ol: vec4<u32>, heads: u32, lq: u32, lk: u32, d: u32, dv: u32, hasMask: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

// Finite stand-in for -inf: keeps exp(m_old - m_new) finite before any key was seen.
const NEG = -3.0e38;

// Chunk c (elements 4c..4c+3) of the row starting at vec4 index j (see rowAt).
fn q4(j: u32, c: u32) -> vec4<f32> { return q[j + c]; }
fn k4(j: u32, c: u32) -> vec4<f32> { return k[j + c]; }
fn v4(j: u32, c: u32) -> vec4<f32> { return v[j + c]; }
fn o4(j: u32, c: u32) -> vec4<f32> { return o[j + c]; }
fn setO4(j: u32, c: u32, x: vec4<f32>, live: bool) { if (live) { o[j + c] = x; } }
// First vec4 of batch b, head h under layout l = (offset, batch stride, head stride, row stride).
fn baseOf(l: vec4<u32>, b: u32, h: u32) -> u32 { return l.x + b * l.y + h * l.z; }

// Mask values of 8 consecutive positions from `i0` (clamped in range), or zeros without a mask.
fn mask8(base: u32, i0: u32) -> array<vec4<f32>, 2> {
  if (u.hasMask == 0u) { return array<vec4<f32>, 2>(); }
  let last = vec4(u.lk - 1u);
  let ia = base + min(i0 + vec4(0u, 1u, 2u, 3u), last) * u.mstride.w;
  let ib = base + min(i0 + vec4(4u, 5u, 6u, 7u), last) * u.mstride.w;
  return array<vec4<f32>, 2>(vec4(mask[ia.x], mask[ia.y], mask[ia.z], mask[ia.w]), vec4(mask[ib.x], mask[ib.y], mask[ib.z], mask[ib.w]));
}

const WG = 32u;
const R = 4u; // query rows per invocation: each key/value load feeds R rows
const NEG4 = vec4(NEG);

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let bh = wid.y;
  let b = bh / u.heads;
  let h = bh % u.heads;
  let d4 = u.d / 4u;
  let dv4 = u.dv / 4u;
  let kb = baseOf(u.kl, b, h); // first key of this (batch, head)
  let vb0 = baseOf(u.vl, b, h);
  // Rows wid.x * WG * R + r * WG + lid.x; rows past Lq repeat the last row and store nothing.
  // qr/orow: where row r starts in q/o; lr: its index in lse.
  var qr = array<u32, R>();
  var orow = array<u32, R>();
  var lr = array<u32, R>();
  var live = array<bool, R>();
  var mb = array<u32, R>();
  for (var r = 0u; r < R; r++) {
    let row = wid.x * WG * R + r * WG + lid.x;
    live[r] = row < u.lq;
    let i = min(row, u.lq - 1u);
    qr[r] = baseOf(u.ql, b, h) + i * u.ql.w;
    orow[r] = baseOf(u.ol, b, h) + i * u.ol.w;
    lr[r] = bh * u.lq + i;
    mb[r] = b * u.mstride.x + h * u.mstride.y + min(row, u.lq - 1u) * u.mstride.z;
  }
  if (!live[0]) { return; }
  for (var c = 0u; c < dv4; c++) {
    for (var r = 0u; r < R; r++) { setO4(orow[r], c, vec4(0.0), live[r]); }
  }
  var m = array<f32, R>();
  var l = array<f32, R>();
  for (var r = 0u; r < R; r++) { m[r] = NEG; }

  for (var j0 = 0u; j0 < u.lk; j0 += 8u) {
    // Keys past Lk are clamped to the last key (in bounds) and masked out below.
    let last = vec4(u.lk - 1u);
    let ja = kb + min(j0 + vec4(0u, 1u, 2u, 3u), last) * u.kl.w;
    let jb = kb + min(j0 + vec4(4u, 5u, 6u, 7u), last) * u.kl.w;
    let wa = vb0 + min(j0 + vec4(0u, 1u, 2u, 3u), last) * u.vl.w;
    let wb = vb0 + min(j0 + vec4(4u, 5u, 6u, 7u), last) * u.vl.w;
    var sa = array<vec4<f32>, R>();
    var sb = array<vec4<f32>, R>();
    for (var c = 0u; c < d4; c++) {
      let key0 = k4(ja.x, c); let key1 = k4(ja.y, c); let key2 = k4(ja.z, c); let key3 = k4(ja.w, c);
      let key4 = k4(jb.x, c); let key5 = k4(jb.y, c); let key6 = k4(jb.z, c); let key7 = k4(jb.w, c);
      for (var r = 0u; r < R; r++) {
        let x = q4(qr[r], c);
        sa[r] += vec4(dot(x, key0), dot(x, key1), dot(x, key2), dot(x, key3));
        sb[r] += vec4(dot(x, key4), dot(x, key5), dot(x, key6), dot(x, key7));
      }
    }
    let va = j0 + vec4(0u, 1u, 2u, 3u) < vec4(u.lk);
    let vb = j0 + vec4(4u, 5u, 6u, 7u) < vec4(u.lk);
    var pa = array<vec4<f32>, R>();
    var pb = array<vec4<f32>, R>();
    var corr = array<f32, R>();
    for (var r = 0u; r < R; r++) {
      let mk = mask8(mb[r], j0);
      let s0 = select(NEG4, sa[r] * u.scale + mk[0], va);
      let s1 = select(NEG4, sb[r] * u.scale + mk[1], vb);
      let mt = max(m[r], max(max(max(s0.x, s0.y), max(s0.z, s0.w)), max(max(s1.x, s1.y), max(s1.z, s1.w))));
      corr[r] = exp(m[r] - mt);
      pa[r] = select(vec4(0.0), exp(s0 - mt), va);
      pb[r] = select(vec4(0.0), exp(s1 - mt), vb);
      l[r] = l[r] * corr[r] + dot(pa[r] + pb[r], vec4(1.0));
      m[r] = mt;
    }
    for (var c = 0u; c < dv4; c++) {
      let val0 = v4(wa.x, c); let val1 = v4(wa.y, c); let val2 = v4(wa.z, c); let val3 = v4(wa.w, c);
      let val4 = v4(wb.x, c); let val5 = v4(wb.y, c); let val6 = v4(wb.z, c); let val7 = v4(wb.w, c);
      for (var r = 0u; r < R; r++) {
        let p0 = pa[r];
        let p1 = pb[r];
        let a = o4(orow[r], c) * corr[r] + p0.x * val0 + p0.y * val1 + p0.z * val2 + p0.w * val3 + p1.x * val4 + p1.y * val5 + p1.z * val6 + p1.w * val7;
        setO4(orow[r], c, a, live[r]);
      }
    }
  }

  for (var r = 0u; r < R; r++) {
    let inv = 1.0 / l[r];
    for (var c = 0u; c < dv4; c++) { setO4(orow[r], c, o4(orow[r], c) * inv, live[r]); }
    if (live[r]) { lse[lr[r]] = m[r] + log(l[r]); }
  }
}
