// Sorts the (key, position) pairs of a 1-d index by key, then position, with a bitonic network
// over m (a power of two) pairs. mode 0 initialises pairs[2p] = index[p] (0xffffffff for padding
// and for indices outside [0, size)), pairs[2p + 1] = p; mode 1 is the compare-exchange step
// (k, j) of the network. The pairs are distinct, so the sorted order is unique: deterministic.
struct U { n: u32, m: u32, size: u32, mode: u32, k: u32, j: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> pairs: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.m) { return; }
  if (u.mode == 0u) {
    var key = 0xffffffffu;
    if (i < u.n) {
      let v = index[i];
      if (v >= 0 && u32(v) < u.size) { key = u32(v); }
    }
    pairs[2u * i] = key;
    pairs[2u * i + 1u] = i;
    return;
  }
  let l = i ^ u.j;
  if (l <= i) { return; }
  let a = vec2u(pairs[2u * i], pairs[2u * i + 1u]);
  let b = vec2u(pairs[2u * l], pairs[2u * l + 1u]);
  let aAfterB = a.x > b.x || (a.x == b.x && a.y > b.y);
  let ascending = (i & u.k) == 0u;
  if (aAfterB == ascending) {
    pairs[2u * i] = b.x;
    pairs[2u * i + 1u] = b.y;
    pairs[2u * l] = a.x;
    pairs[2u * l + 1u] = a.y;
  }
}
