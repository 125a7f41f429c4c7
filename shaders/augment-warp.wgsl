// Geometric augmentation of a batch [B, C, Hin, Win] -> [B, C, Hout, Wout]. Each sample has its
// own parameters (a row of `prm`): an affine map from normalised output coordinates (u, v in
// [0, 1]) to normalised input coordinates, preceded by a piecewise-linear grid distortion
// (albumentations' GridDistortion: the axis is cut into S cells whose widths are scaled).
// Row layout: [a00, a01, a02, a10, a11, a12, xs_0..xs_S, ys_0..ys_S] where xs/ys are the
// cumulative distorted cell boundaries in [0, 1] (xs_0 = 0, xs_S = 1; identity: i / S).
// mode 0 samples bilinearly (images), mode 1 takes the nearest pixel (masks stay binary).
// Outside the input: 0 (constant border).
struct U { b: u32, c: u32, hin: u32, win: u32, hout: u32, wout: u32, steps: u32, stride: u32, mode: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// Maps t in [0,1] through the distorted cell boundaries starting at prm[base].
fn distort(t: f32, base: u32) -> f32 {
  let s = f32(u.steps);
  let cell = min(u32(max(t, 0.0) * s), u.steps - 1u);
  let f = t * s - f32(cell);
  let lo = prm[base + cell];
  let hi = prm[base + cell + 1u];
  return lo + (hi - lo) * f;
}

fn px(bc: u32, y: i32, x: i32) -> f32 {
  if (y < 0 || x < 0 || y >= i32(u.hin) || x >= i32(u.win)) { return 0.0; }
  return src[(bc * u.hin + u32(y)) * u.win + u32(x)];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.b * u.c * u.hout * u.wout) { return; }
  let x = i % u.wout;
  let y = (i / u.wout) % u.hout;
  let bc = i / (u.wout * u.hout);
  let b = bc / u.c;
  let p = b * u.stride;
  // Pixel centres in normalised output coordinates, then grid distortion, then the affine map.
  let uo = distort((f32(x) + 0.5) / f32(u.wout), p + 6u);
  let vo = distort((f32(y) + 0.5) / f32(u.hout), p + 7u + u.steps);
  let ui = prm[p] * uo + prm[p + 1u] * vo + prm[p + 2u];
  let vi = prm[p + 3u] * uo + prm[p + 4u] * vo + prm[p + 5u];
  let fx = ui * f32(u.win) - 0.5;
  let fy = vi * f32(u.hin) - 0.5;
  if (u.mode == 1u) {
    out[i] = px(bc, i32(round(fy)), i32(round(fx)));
    return;
  }
  let x0 = i32(floor(fx));
  let y0 = i32(floor(fy));
  let ax = fx - f32(x0);
  let ay = fy - f32(y0);
  let top = mix(px(bc, y0, x0), px(bc, y0, x0 + 1), ax);
  let bot = mix(px(bc, y0 + 1, x0), px(bc, y0 + 1, x0 + 1), ax);
  out[i] = mix(top, bot, ay);
}
