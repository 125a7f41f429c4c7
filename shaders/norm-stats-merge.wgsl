// Normalisation statistics, pass 2: one invocation per group merges the chunks' (count, mean,
// M2) from norm-stats.wgsl (Chan et al.'s pairwise update) and writes the mean, the biased
// variance and rstd = 1 / sqrt(var + eps).
struct U { groups: u32, chunks: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> bvar: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * 64u;
  if (g >= u.groups) { return; }
  var n = 0.0;
  var m = 0.0;
  var m2 = 0.0;
  for (var c = 0u; c < u.chunks; c++) {
    let p = 3u * (g * u.chunks + c);
    let nb = part[p];
    if (nb > 0.0) {
      let nt = n + nb;
      let d = part[p + 1u] - m;
      m += d * nb / nt;
      m2 += part[p + 2u] + d * d * n * nb / nt;
      n = nt;
    }
  }
  let bv = max(m2 / n, 0.0);
  mean[g] = m;
  bvar[g] = bv;
  rstd[g] = inverseSqrt(bv + u.eps);
}
