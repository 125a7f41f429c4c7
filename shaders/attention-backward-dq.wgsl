// Attention backward, step 2: dQ, one query row per invocation, keys visited in blocks of 8
// (FlashAttention-2 backward, Dao 2023, arXiv 2307.08691, its loop over key blocks).
// Probabilities are recomputed from q, k and the logsumexp saved by the forward:
//   P_ij = exp(scale * q_i . k_j + mask_ij - lse_i),  dP_ij = dO_i . v_j,
//   dS_ij = P_ij (dP_ij - delta_i),                     dQ_i = scale * sum_j dS_ij k_j.
// lse_i and delta_i come interleaved in `ld` (attention-backward-delta.wgsl). Same layout
// choices as attention-forward.wgsl: no workgroup memory, uniform key/value loads, and the
// output row is the accumulator; R query rows per invocation share each key/value load.
// Head dims are multiples of 4; function-scope arrays are initialised explicitly (see there).
// Layouts as in attention-forward.wgsl: dO shares o's layout, dQ shares q's.
struct U { mstride: vec4<u32>, ql: vec4<u32>, kl: vec4<u32>, vl: vec4<u32>, ol: vec4<u32>, heads: u32, lq: u32, lk: u32, d: u32, dv: u32, hasMask: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> ld: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4<f32>>;

// Chunk c (elements 4c..4c+3) of the row starting at vec4 index j.
fn q4(j: u32, c: u32) -> vec4<f32> { return q[j + c]; }
fn k4(j: u32, c: u32) -> vec4<f32> { return k[j + c]; }
fn v4(j: u32, c: u32) -> vec4<f32> { return v[j + c]; }
fn do4(j: u32, c: u32) -> vec4<f32> { return dout[j + c]; }
fn dq4(j: u32, c: u32) -> vec4<f32> { return dq[j + c]; }
fn setDq4(j: u32, c: u32, x: vec4<f32>, live: bool) { if (live) { dq[j + c] = x; } }
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
const R = 4u;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let bh = wid.y;
  let b = bh / u.heads;
  let h = bh % u.heads;
  let d4 = u.d / 4u;
  let dv4 = u.dv / 4u;
  let kb = baseOf(u.kl, b, h);
  let vb0 = baseOf(u.vl, b, h);
  // Rows wid.x * WG * R + r * WG + lid.x; rows past Lq repeat the last row and store nothing.
  // qr/orow: where row r starts in q and dQ / in dO.
  var qr = array<u32, R>();
  var orow = array<u32, R>();
  var live = array<bool, R>();
  var mb = array<u32, R>();
  var lse = array<f32, R>();
  var delta = array<f32, R>();
  for (var r = 0u; r < R; r++) {
    let row = wid.x * WG * R + r * WG + lid.x;
    live[r] = row < u.lq;
    let i = min(row, u.lq - 1u);
    qr[r] = baseOf(u.ql, b, h) + i * u.ql.w;
    orow[r] = baseOf(u.ol, b, h) + i * u.ol.w;
    mb[r] = b * u.mstride.x + h * u.mstride.y + i * u.mstride.z;
    lse[r] = ld[2u * (bh * u.lq + i)];
    delta[r] = ld[2u * (bh * u.lq + i) + 1u];
  }
  if (!live[0]) { return; }
  for (var c = 0u; c < d4; c++) {
    for (var r = 0u; r < R; r++) { setDq4(qr[r], c, vec4(0.0), live[r]); }
  }

  for (var j0 = 0u; j0 < u.lk; j0 += 8u) {
    let last = vec4(u.lk - 1u);
    let ja = kb + min(j0 + vec4(0u, 1u, 2u, 3u), last) * u.kl.w;
    let jb = kb + min(j0 + vec4(4u, 5u, 6u, 7u), last) * u.kl.w;
    let wa = vb0 + min(j0 + vec4(0u, 1u, 2u, 3u), last) * u.vl.w;
    let wb = vb0 + min(j0 + vec4(4u, 5u, 6u, 7u), last) * u.vl.w;
    var sa = array<vec4<f32>, R>();
    var sb = array<vec4<f32>, R>();
    var ga = array<vec4<f32>, R>();
    var gb = array<vec4<f32>, R>();
    for (var c = 0u; c < d4; c++) {
      let key0 = k4(ja.x, c); let key1 = k4(ja.y, c); let key2 = k4(ja.z, c); let key3 = k4(ja.w, c);
      let key4 = k4(jb.x, c); let key5 = k4(jb.y, c); let key6 = k4(jb.z, c); let key7 = k4(jb.w, c);
      for (var r = 0u; r < R; r++) {
        let x = q4(qr[r], c);
        sa[r] += vec4(dot(x, key0), dot(x, key1), dot(x, key2), dot(x, key3));
        sb[r] += vec4(dot(x, key4), dot(x, key5), dot(x, key6), dot(x, key7));
      }
    }
    for (var c = 0u; c < dv4; c++) {
      let val0 = v4(wa.x, c); let val1 = v4(wa.y, c); let val2 = v4(wa.z, c); let val3 = v4(wa.w, c);
      let val4 = v4(wb.x, c); let val5 = v4(wb.y, c); let val6 = v4(wb.z, c); let val7 = v4(wb.w, c);
      for (var r = 0u; r < R; r++) {
        let g = do4(orow[r], c);
        ga[r] += vec4(dot(g, val0), dot(g, val1), dot(g, val2), dot(g, val3));
        gb[r] += vec4(dot(g, val4), dot(g, val5), dot(g, val6), dot(g, val7));
      }
    }
    let va = j0 + vec4(0u, 1u, 2u, 3u) < vec4(u.lk);
    let vb = j0 + vec4(4u, 5u, 6u, 7u) < vec4(u.lk);
    // scale * dS, zero for keys past Lk.
    var dsa = array<vec4<f32>, R>();
    var dsb = array<vec4<f32>, R>();
    for (var r = 0u; r < R; r++) {
      let mk = mask8(mb[r], j0);
      let s0 = sa[r] * u.scale + mk[0];
      let s1 = sb[r] * u.scale + mk[1];
      dsa[r] = select(vec4(0.0), exp(s0 - lse[r]) * (ga[r] - delta[r]) * u.scale, va);
      dsb[r] = select(vec4(0.0), exp(s1 - lse[r]) * (gb[r] - delta[r]) * u.scale, vb);
    }
    for (var c = 0u; c < d4; c++) {
      let key0 = k4(ja.x, c); let key1 = k4(ja.y, c); let key2 = k4(ja.z, c); let key3 = k4(ja.w, c);
      let key4 = k4(jb.x, c); let key5 = k4(jb.y, c); let key6 = k4(jb.z, c); let key7 = k4(jb.w, c);
      for (var r = 0u; r < R; r++) {
        let p0 = dsa[r];
        let p1 = dsb[r];
        let a = dq4(qr[r], c) + p0.x * key0 + p0.y * key1 + p0.z * key2 + p0.w * key3 + p1.x * key4 + p1.y * key5 + p1.z * key6 + p1.w * key7;
        setDq4(qr[r], c, a, live[r]);
      }
    }
  }
}
