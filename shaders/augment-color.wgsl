// Photometric augmentation of RGB images [B, 3, H, W] in [0, 1], one invocation per pixel:
// brightness, contrast (blend with the image's mean grey level, as torchvision), saturation
// (blend with the pixel's grey level), hue shift (in HSV), clamp to [0, 1], then normalisation
// (x - mean) / std per channel. Per-sample factors in `prm` rows: [brightness, contrast,
// saturation, hue]; identity is [1, 1, 1, 0]. `greyMean` holds each input image's mean grey level.
struct U { b: u32, hw: u32, m0: f32, m1: f32, m2: f32, s0: f32, s1: f32, s2: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<f32>;
@group(0) @binding(3) var<storage, read> greyMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn grey(c: vec3f) -> f32 { return dot(c, vec3f(0.299, 0.587, 0.114)); }

fn rgb2hsv(c: vec3f) -> vec3f {
  let mx = max(c.r, max(c.g, c.b));
  let mn = min(c.r, min(c.g, c.b));
  let d = mx - mn;
  var h = 0.0;
  if (d > 0.0) {
    if (mx == c.r) { h = (c.g - c.b) / d; }
    else if (mx == c.g) { h = 2.0 + (c.b - c.r) / d; }
    else { h = 4.0 + (c.r - c.g) / d; }
    h = fract(h / 6.0 + 1.0);
  }
  return vec3f(h, select(0.0, d / mx, mx > 0.0), mx);
}

fn hsv2rgb(c: vec3f) -> vec3f {
  let k = vec3f(0.0, 4.0, 2.0);
  let p = clamp(abs(fract(c.x + k / 6.0) * 6.0 - 3.0) - 1.0, vec3f(0.0), vec3f(1.0));
  return c.z * mix(vec3f(1.0), p, c.y);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.b * u.hw) { return; }
  let b = i / u.hw;
  let q = i % u.hw;
  let base = b * 3u * u.hw + q;
  var c = vec3f(src[base], src[base + u.hw], src[base + 2u * u.hw]);
  let p = b * 4u;
  c = clamp(c * prm[p], vec3f(0.0), vec3f(1.0));
  c = clamp(mix(vec3f(greyMean[b] * prm[p]), c, prm[p + 1u]), vec3f(0.0), vec3f(1.0));
  c = clamp(mix(vec3f(grey(c)), c, prm[p + 2u]), vec3f(0.0), vec3f(1.0));
  if (prm[p + 3u] != 0.0) {
    var hsv = rgb2hsv(c);
    hsv.x = fract(hsv.x + prm[p + 3u] + 1.0);
    c = hsv2rgb(hsv);
  }
  out[base] = (c.r - u.m0) / u.s0;
  out[base + u.hw] = (c.g - u.m1) / u.s1;
  out[base + 2u * u.hw] = (c.b - u.m2) / u.s2;
}
