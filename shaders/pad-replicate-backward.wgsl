// dx = backward of replicate pad. Input element i receives the gradient of every output element
// whose clamped source coordinate is i: on each dim a range [lo, hi] of output coordinates (the
// whole border strip at an edge, one coordinate inside, none where cropped). Each thread owns
// its element and sums its box of dy in a fixed (row-major) order, so the result is
// deterministic; every dy element is read exactly once over all threads.
struct U { shape: array<vec4<u32>, 2>, inShape: array<vec4<u32>, 2>, left: array<vec4<i32>, 2>, n: u32, rank: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var lo: array<i32, 8>;
  var len: array<i32, 8>;
  var rem = i;
  var count = 1;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let m = i32(u.inShape[d / 4][d % 4]);
    let s = i32(u.shape[d / 4][d % 4]);
    let c = i32(rem % u32(m));
    rem = rem / u32(m);
    let at = c + u.left[d / 4][d % 4];
    let a = max(select(at, 0, c == 0), 0);
    let b = min(select(at, s - 1, c == m - 1), s - 1);
    lo[d] = a;
    len[d] = max(b - a + 1, 0);
    count *= len[d];
  }
  var acc = 0.0;
  for (var k = 0; k < count; k++) {
    var r = k;
    var j = 0;
    var stride = 1;
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      j += (lo[d] + r % len[d]) * stride;
      r = r / len[d];
      stride *= i32(u.shape[d / 4][d % 4]);
    }
    acc += dy[j];
  }
  dx[i] = acc;
}
