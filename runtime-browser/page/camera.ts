// Camera mode: endoscopy is video, so the page can run the loaded model on a live camera (or any
// video source the browser offers as one, such as a capture card), frame after frame: each frame
// is grabbed from a <video> element, run and drawn as a single image's result, and the frames per
// second (whole loop: grab, preprocess, upload, forward, readback, draw) are shown. The loop is
// one request (images.ts): picking an image, starting a batch or pressing Stop ends it.
import type { RgbaImage } from './preprocess.ts';

export interface CameraState {
  running: boolean;
  frames: number;
  fps: number;
  width: number;
  height: number;
  error: string | null;
}

let stream: MediaStream | null = null;

/** Opens the camera into the hidden <video>; rejects with a readable message when refused or absent. */
export async function openCamera(video: HTMLVideoElement): Promise<void> {
  const media = navigator.mediaDevices;
  if (!media?.getUserMedia)
    throw new Error(
      'this browser offers no camera access here (navigator.mediaDevices is missing; it needs ' +
        'https:// or http://localhost)',
    );
  try {
    stream = await media.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    throw new Error(
      `the camera could not be opened ` +
        `(${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}); allow camera access for this ` +
        `page, or check that a camera is connected`,
    );
  }
  video.srcObject = stream;
  await video.play();
}

export function closeCamera(video: HTMLVideoElement): void {
  for (const t of stream?.getTracks() ?? []) t.stop();
  stream = null;
  video.srcObject = null;
}

/** The current video frame as an ImageBitmap and its RGBA pixels. */
export async function grabFrame(video: HTMLVideoElement): Promise<{ bitmap: ImageBitmap; pixels: RgbaImage }> {
  const w = video.videoWidth,
    h = video.videoHeight;
  if (!w || !h) throw new Error('the camera gives no picture yet');
  const bitmap = await createImageBitmap(video);
  const c = new OffscreenCanvas(w, h),
    ctx = c.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  const d = ctx.getImageData(0, 0, w, h);
  return { bitmap, pixels: { width: w, height: h, data: d.data } };
}

/**
 * Opens the camera and runs `onFrame` on frame after frame while `go()` holds, keeping `cam`'s
 * frame count and frames per second (over the last ten frames) and the line under the button.
 */
export async function cameraLoop(
  video: HTMLVideoElement,
  cam: CameraState,
  go: () => boolean,
  onFrame: (frame: { bitmap: ImageBitmap; pixels: RgbaImage }) => Promise<void>,
): Promise<void> {
  const times: number[] = [];
  try {
    await openCamera(video);
    while (go()) {
      const frame = await grabFrame(video);
      cam.frames++;
      [cam.width, cam.height] = [frame.pixels.width, frame.pixels.height];
      await onFrame(frame);
      times.push(performance.now());
      if (times.length > 10) times.shift();
      cam.fps = times.length > 1 ? (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000) : 0;
      document.getElementById('camera-fps')!.textContent =
        `${cam.width}×${cam.height}, ${cam.fps.toFixed(1)} frames/s (frame ${cam.frames})`;
    }
  } finally {
    closeCamera(video);
  }
}
