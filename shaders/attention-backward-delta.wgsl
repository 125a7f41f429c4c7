// Attention backward, step 1: per query row, the logsumexp saved by the forward and
// delta = rowsum(dO * O) (FlashAttention-2, Dao 2023: the softmax backward's
// sum_j P_ij dP_ij equals dO_i . O_i, so it needs no pass over the keys). Written interleaved
// as ld[2 * row] = lse, ld[2 * row + 1] = delta, so the next two kernels bind one buffer.
// o and dO share a layout (offset, batch, head, row strides in elements; see attention-forward.wgsl).
struct U { ol: vec4<u32>, rows: u32, dv: u32, heads: u32, lq: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> ld: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= u.rows) { return; }
  var acc = 0.0;
  let bh = row / u.lq;
  let base = u.ol.x + (bh / u.heads) * u.ol.y + (bh % u.heads) * u.ol.z + (row % u.lq) * u.ol.w;
  for (var e = 0u; e < u.dv; e++) { acc += dout[base + e] * o[base + e]; }
  ld[2u * row] = lse[row];
  ld[2u * row + 1u] = acc;
}
