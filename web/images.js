// Image handling in the page: decode with the browser (any format it knows, EXIF orientation
// applied, off the main thread), downscale huge photos before they reach wasm, make small
// thumbnails, and capture webcam frames.

/// Files larger than this are refused before decoding.
export const MAX_FILE_BYTES = 60 << 20;
/// Photos are handed to wasm with their short side at most this (wasm then resizes to 256 and
/// crops 224 exactly as the CLI does); a 48-megapixel photo never crosses into wasm whole.
const HANDOFF_SHORT_SIDE = 512;
const THUMB = 96;

function canvas(w, h) {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(w, h);
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  return c;
}

async function toBlob(c, type, quality) {
  if (c.convertToBlob) return c.convertToBlob({ type, quality });
  return new Promise((resolve) => c.toBlob(resolve, type, quality));
}

/// Decode `blob` to a bitmap, scaled so the short side is at most `shortSide`.
async function bitmap(blob, shortSide) {
  if (blob.size > MAX_FILE_BYTES) throw new Error(`file too large (${(blob.size / 1e6).toFixed(0)} MB; the limit is ${MAX_FILE_BYTES >> 20} MB)`);
  let bmp;
  try {
    bmp = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error('not an image this browser can decode (corrupt or unsupported)');
  }
  const s = Math.min(bmp.width, bmp.height);
  if (s === 0) throw new Error('image has no pixels');
  if (s <= shortSide) return bmp;
  const k = shortSide / s;
  const small = await createImageBitmap(bmp, {
    resizeWidth: Math.max(1, Math.round(bmp.width * k)),
    resizeHeight: Math.max(1, Math.round(bmp.height * k)),
    resizeQuality: 'high',
  });
  bmp.close();
  return small;
}

/// RGBA pixels of an image file or blob: {rgba, width, height}.
export async function pixels(blob) {
  const bmp = await bitmap(blob, HANDOFF_SHORT_SIDE);
  const c = canvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  const data = ctx.getImageData(0, 0, c.width, c.height);
  return { rgba: new Uint8Array(data.data.buffer), width: c.width, height: c.height };
}

/// A small square JPEG thumbnail (centre crop) as an object URL.
export async function thumbnail(blob) {
  const bmp = await bitmap(blob, THUMB);
  const c = canvas(THUMB, THUMB);
  const s = Math.min(bmp.width, bmp.height);
  c.getContext('2d').drawImage(bmp, (bmp.width - s) / 2, (bmp.height - s) / 2, s, s, 0, 0, THUMB, THUMB);
  bmp.close();
  return URL.createObjectURL(await toBlob(c, 'image/jpeg', 0.8));
}

/// Every file under a dropped item, with its folder path ("cats/a.jpg"); folders are walked.
export async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (entries.length === 0) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  }
  for (const e of entries) await walk(e, '');
  return out;
}

/// The webcam: start() a stream into a <video>, frame() as a JPEG blob, stop().
export class Webcam {
  constructor(video) {
    this.video = video;
    this.stream = null;
  }

  async start() {
    if (this.stream) return;
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives no camera access');
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    this.video.srcObject = this.stream;
    await this.video.play();
  }

  stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  get running() {
    return this.stream !== null;
  }

  async frame() {
    const v = this.video;
    if (!v.videoWidth) throw new Error('the camera has no picture yet');
    const c = canvas(v.videoWidth, v.videoHeight);
    c.getContext('2d').drawImage(v, 0, 0);
    return toBlob(c, 'image/jpeg', 0.9);
  }
}
