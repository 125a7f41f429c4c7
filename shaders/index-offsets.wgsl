// offsets[k] = the first position in the sorted (key, position) pairs whose key is >= k, for k in
// [0, size]: the positions with index k are the segment [offsets[k], offsets[k + 1]). A binary
// search (lower bound) over the m sorted keys per k.
struct U { m: u32, size: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> pairs: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * 64u;
  if (k > u.size) { return; }
  var lo = 0u;
  var hi = u.m;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (pairs[2u * mid] < k) { lo = mid + 1u; } else { hi = mid; }
  }
  offsets[k] = lo;
}
