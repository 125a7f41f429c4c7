// Attention backward, step 3: dK and dV, one key row per invocation, queries visited in blocks
// of 8 (FlashAttention-2 backward, Dao 2023, arXiv 2307.08691, its loop over query blocks; each
// invocation owns its key's gradients, so there are no atomics):
//   P_ij = exp(scale * q_i . k_j + mask_ij - lse_i),   dV_j = sum_i P_ij dO_i,
//   dS_ij = P_ij (dO_i . v_j - delta_i),                dK_j = scale * sum_i dS_ij q_i.
// lse_i and delta_i come interleaved in `ld` (attention-backward-delta.wgsl). Same layout
// choices as attention-forward.wgsl: no workgroup memory, uniform query-side loads, and the
// output rows are the accumulators; R key rows per invocation share each query-side load.
// Head dims are multiples of 4; function-scope arrays are initialised explicitly (see there).
// Layouts as in attention-forward.wgsl: dO shares o's layout, dK k's and dV v's.
struct U { mstride: vec4<u32>, ql: vec4<u32>, kl: vec4<u32>, vl: vec4<u32>, ol: vec4<u32>, heads: u32, lq: u32, lk: u32, d: u32, dv: u32, hasMask: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> ld: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4<f32>>;

// Chunk c (elements 4c..4c+3) of the row starting at vec4 index j.
fn q4(j: u32, c: u32) -> vec4<f32> { return q[j + c]; }
fn k4(j: u32, c: u32) -> vec4<f32> { return k[j + c]; }
fn v4(j: u32, c: u32) -> vec4<f32> { return v[j + c]; }
fn do4(j: u32, c: u32) -> vec4<f32> { return dout[j + c]; }
fn dk4(j: u32, c: u32) -> vec4<f32> { return dk[j + c]; }
fn dv4(j: u32, c: u32) -> vec4<f32> { return dv[j + c]; }
fn setDk4(j: u32, c: u32, x: vec4<f32>, live: bool) { if (live) { dk[j + c] = x; } }
fn setDv4(j: u32, c: u32, x: vec4<f32>, live: bool) { if (live) { dv[j + c] = x; } }
fn baseOf(l: vec4<u32>, b: u32, h: u32) -> u32 { return l.x + b * l.y + h * l.z; }

// Mask values of 8 consecutive positions from `i0` (clamped in range), or zeros without a mask.
fn mask8(base: u32, i0: u32) -> array<vec4<f32>, 2> {
  if (u.hasMask == 0u) { return array<vec4<f32>, 2>(); }
  let last = vec4(u.lq - 1u);
  let ia = base + min(i0 + vec4(0u, 1u, 2u, 3u), last) * u.mstride.z;
  let ib = base + min(i0 + vec4(4u, 5u, 6u, 7u), last) * u.mstride.z;
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
  let nv4 = u.dv / 4u;
  let q0 = bh * u.lq; // first lse/delta row of this (batch, head)
  let qb = baseOf(u.ql, b, h);
  let ob = baseOf(u.ol, b, h);
  // Keys wid.x * WG * R + r * WG + lid.x; keys past Lk repeat the last key and store nothing.
  // kr/vr: where key r starts in k and dK / in v and dV.
  var kr = array<u32, R>();
  var vr = array<u32, R>();
  var live = array<bool, R>();
  var mb = array<u32, R>();
  for (var r = 0u; r < R; r++) {
    let key = wid.x * WG * R + r * WG + lid.x;
    live[r] = key < u.lk;
    let j = min(key, u.lk - 1u);
    kr[r] = baseOf(u.kl, b, h) + j * u.kl.w;
    vr[r] = baseOf(u.vl, b, h) + j * u.vl.w;
    mb[r] = b * u.mstride.x + h * u.mstride.y + j * u.mstride.w;
  }
  if (!live[0]) { return; }
  for (var r = 0u; r < R; r++) {
    for (var c = 0u; c < d4; c++) { setDk4(kr[r], c, vec4(0.0), live[r]); }
    for (var c = 0u; c < nv4; c++) { setDv4(vr[r], c, vec4(0.0), live[r]); }
  }

  for (var i0 = 0u; i0 < u.lq; i0 += 8u) {
    let last = vec4(u.lq - 1u);
    let ia = q0 + min(i0 + vec4(0u, 1u, 2u, 3u), last); // lse/delta rows
    let ib = q0 + min(i0 + vec4(4u, 5u, 6u, 7u), last);
    let xa = qb + min(i0 + vec4(0u, 1u, 2u, 3u), last) * u.ql.w; // q rows
    let xb = qb + min(i0 + vec4(4u, 5u, 6u, 7u), last) * u.ql.w;
    let ga4 = ob + min(i0 + vec4(0u, 1u, 2u, 3u), last) * u.ol.w; // dO rows
    let gb4 = ob + min(i0 + vec4(4u, 5u, 6u, 7u), last) * u.ol.w;
    var sa = array<vec4<f32>, R>();
    var sb = array<vec4<f32>, R>();
    var ga = array<vec4<f32>, R>();
    var gb = array<vec4<f32>, R>();
    for (var c = 0u; c < d4; c++) {
      let qry0 = q4(xa.x, c); let qry1 = q4(xa.y, c); let qry2 = q4(xa.z, c); let qry3 = q4(xa.w, c);
      let qry4 = q4(xb.x, c); let qry5 = q4(xb.y, c); let qry6 = q4(xb.z, c); let qry7 = q4(xb.w, c);
      for (var r = 0u; r < R; r++) {
        let y = k4(kr[r], c);
        sa[r] += vec4(dot(y, qry0), dot(y, qry1), dot(y, qry2), dot(y, qry3));
        sb[r] += vec4(dot(y, qry4), dot(y, qry5), dot(y, qry6), dot(y, qry7));
      }
    }
    for (var c = 0u; c < nv4; c++) {
      let grd0 = do4(ga4.x, c); let grd1 = do4(ga4.y, c); let grd2 = do4(ga4.z, c); let grd3 = do4(ga4.w, c);
      let grd4 = do4(gb4.x, c); let grd5 = do4(gb4.y, c); let grd6 = do4(gb4.z, c); let grd7 = do4(gb4.w, c);
      for (var r = 0u; r < R; r++) {
        let y = v4(vr[r], c);
        ga[r] += vec4(dot(y, grd0), dot(y, grd1), dot(y, grd2), dot(y, grd3));
        gb[r] += vec4(dot(y, grd4), dot(y, grd5), dot(y, grd6), dot(y, grd7));
      }
    }
    let lsea = vec4(ld[2u * ia.x], ld[2u * ia.y], ld[2u * ia.z], ld[2u * ia.w]);
    let lseb = vec4(ld[2u * ib.x], ld[2u * ib.y], ld[2u * ib.z], ld[2u * ib.w]);
    let dela = vec4(ld[2u * ia.x + 1u], ld[2u * ia.y + 1u], ld[2u * ia.z + 1u], ld[2u * ia.w + 1u]);
    let delb = vec4(ld[2u * ib.x + 1u], ld[2u * ib.y + 1u], ld[2u * ib.z + 1u], ld[2u * ib.w + 1u]);
    let va = i0 + vec4(0u, 1u, 2u, 3u) < vec4(u.lq);
    let vb = i0 + vec4(4u, 5u, 6u, 7u) < vec4(u.lq);
    var pa = array<vec4<f32>, R>();
    var pb = array<vec4<f32>, R>();
    var dsa = array<vec4<f32>, R>();
    var dsb = array<vec4<f32>, R>();
    for (var r = 0u; r < R; r++) {
      let mk = mask8(mb[r], i0);
      let s0 = sa[r] * u.scale + mk[0];
      let s1 = sb[r] * u.scale + mk[1];
      pa[r] = select(vec4(0.0), exp(s0 - lsea), va);
      pb[r] = select(vec4(0.0), exp(s1 - lseb), vb);
      dsa[r] = pa[r] * (ga[r] - dela) * u.scale; // scale * dS
      dsb[r] = pb[r] * (gb[r] - delb) * u.scale;
    }
    for (var c = 0u; c < nv4; c++) {
      let grd0 = do4(ga4.x, c); let grd1 = do4(ga4.y, c); let grd2 = do4(ga4.z, c); let grd3 = do4(ga4.w, c);
      let grd4 = do4(gb4.x, c); let grd5 = do4(gb4.y, c); let grd6 = do4(gb4.z, c); let grd7 = do4(gb4.w, c);
      for (var r = 0u; r < R; r++) {
        let p0 = pa[r];
        let p1 = pb[r];
        setDv4(vr[r], c, dv4(vr[r], c) + p0.x * grd0 + p0.y * grd1 + p0.z * grd2 + p0.w * grd3 + p1.x * grd4 + p1.y * grd5 + p1.z * grd6 + p1.w * grd7, live[r]);
      }
    }
    for (var c = 0u; c < d4; c++) {
      let qry0 = q4(xa.x, c); let qry1 = q4(xa.y, c); let qry2 = q4(xa.z, c); let qry3 = q4(xa.w, c);
      let qry4 = q4(xb.x, c); let qry5 = q4(xb.y, c); let qry6 = q4(xb.z, c); let qry7 = q4(xb.w, c);
      for (var r = 0u; r < R; r++) {
        let p0 = dsa[r];
        let p1 = dsb[r];
        setDk4(kr[r], c, dk4(kr[r], c) + p0.x * qry0 + p0.y * qry1 + p0.z * qry2 + p0.w * qry3 + p1.x * qry4 + p1.y * qry5 + p1.z * qry6 + p1.w * qry7, live[r]);
      }
    }
  }
}
