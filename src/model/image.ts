/**
 * Image preprocessing: encoded bytes (JPEG, PNG, WebP) → the float CHW tensor an image model
 * takes. Decoding and resizing are sharp's (libvips); kiln only computes the geometry and does
 * the rescale/normalize arithmetic. The spec lives in the manifest (`image`), so serving needs
 * neither preprocessor_config.json nor the compile flags.
 */
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { KilnError } from '../core/errors.js';

export const CHANNEL_ORDERS = ['rgb', 'bgr'] as const;
export type ChannelOrder = (typeof CHANNEL_ORDERS)[number];

/** sharp's resampling kernels that PIL's filters map to. */
export type Resample = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

/**
 * How an image reaches the tensor's height × width:
 * - `exact`: resized to height × width, aspect ratio not kept (Hugging Face ViT `size: {height, width}`).
 * - `shortest-edge`: shortest edge resized to `shortestEdge` (aspect kept), then the center
 *   height × width cut out (Hugging Face ResNet/ConvNeXt `crop_pct`, CLIP `crop_size`).
 * - `fit-height-pad`: resized to the tensor's height keeping the aspect ratio (width at most
 *   the tensor's), the rest of the width zero after normalization (PaddleOCR's text-line classifier).
 * - `none`: the image must already be height × width.
 */
export const RESIZE_MODES = ['exact', 'shortest-edge', 'fit-height-pad', 'none'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

export interface ImagePreprocessing {
  /** The graph input the tensor feeds ([batch, 3, height, width], float). */
  input: string;
  height: number;
  width: number;
  /** Channel order of the tensor; mean and std are given in this order. */
  channels: ChannelOrder;
  resize: ResizeMode;
  /** `shortest-edge` only: the length the shortest edge is resized to before the center crop. */
  shortestEdge?: number;
  resample: Resample;
  /** Pixel values (0–255) are multiplied by this before normalizing. @defaultValue 1/255 */
  rescale: number;
  /** Per channel: (pixel × rescale − mean) / std. */
  mean: [number, number, number];
  std: [number, number, number];
  /** `probabilities`: the graph ends in Softmax, so its outputs are scores already, not logits. */
  outputs: 'logits' | 'probabilities';
}

/** Formats decoded; sharp reads more (SVG, TIFF, GIF…), which a server should not parse from strangers. */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp'] as const;
/** Largest image accepted, in pixels (about 8K × 4K); decoding beyond it is refused before any work. */
export const MAX_IMAGE_PIXELS = 40_000_000;
/** Largest encoded image accepted, in bytes. */
export const MAX_IMAGE_BYTES = 20 * 2 ** 20;

/** PIL's resample ids (Hugging Face `resample`) → sharp kernels. BOX (4) and HAMMING (5) have no sharp twin: linear. */
const PIL_RESAMPLE: Record<number, Resample> = {
  0: 'nearest',
  1: 'lanczos3',
  2: 'linear',
  3: 'cubic',
  4: 'linear',
  5: 'linear',
};

/** Hugging Face's defaults when a preprocessor_config.json omits the field (IMAGENET_STANDARD_MEAN/STD). */
const DEFAULT_MEAN: [number, number, number] = [0.5, 0.5, 0.5];
const DEFAULT_STD: [number, number, number] = [0.5, 0.5, 0.5];

/** Flags or config fields that override what the graph and preprocessor_config.json say. */
export interface ImageOverrides {
  height?: number;
  width?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  channels?: ChannelOrder;
  resize?: ResizeMode;
}

/**
 * The spec from a Hugging Face preprocessor_config.json (fields do_resize, size, crop_size,
 * crop_pct, do_center_crop, do_rescale, rescale_factor, do_normalize, image_mean, image_std,
 * resample). `crop_pct` follows transformers' ConvNeXt: below 384 the shortest edge goes to
 * size / crop_pct and the center size × size is cut; at 384 and above the image is warped to
 * size × size. Returns the parts it decides; the graph gives the rest.
 */
export function preprocessingFromConfig(raw: unknown, path: string): Partial<ImagePreprocessing> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new KilnError('KILN_ERR_CONFIG_INVALID', { path, problem: 'it is not a JSON object' });
  const c = raw as Record<string, unknown>;
  const bad = (field: string, rule: string): never => {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path,
      problem: `"${field}" must be ${rule}, got ${JSON.stringify(c[field])}`,
    });
  };
  const triple = (field: string): [number, number, number] | undefined => {
    const v = c[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') return [v, v, v];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number'))
      return bad(field, 'a number or a list of 3 numbers');
    return v as [number, number, number];
  };
  const out: Partial<ImagePreprocessing> = {};
  const size = c.size;
  let edge: number | null = null;
  let hw: { height: number; width: number } | null = null;
  if (typeof size === 'number') {
    // An integer size is a shortest edge when something crops after it, else a square.
    if (c.crop_pct !== undefined || c.crop_size !== undefined) edge = size;
    else hw = { height: size, width: size };
  } else if (typeof size === 'object' && size !== null) {
    const s = size as Record<string, unknown>;
    if (typeof s.shortest_edge === 'number') edge = s.shortest_edge;
    else if (typeof s.height === 'number' && typeof s.width === 'number') hw = { height: s.height, width: s.width };
    else bad('size', '{"shortest_edge": N} or {"height": H, "width": W}');
  } else if (size !== undefined) bad('size', 'a number or an object');

  const cropSize = c.crop_size;
  const cropHW =
    typeof cropSize === 'number'
      ? { height: cropSize, width: cropSize }
      : typeof cropSize === 'object' &&
          cropSize !== null &&
          typeof (cropSize as Record<string, unknown>).height === 'number'
        ? { height: (cropSize as { height: number }).height, width: (cropSize as { width: number }).width }
        : null;
  const doResize = c.do_resize !== false;
  if (!doResize) {
    out.resize = 'none';
    if (cropHW && c.do_center_crop !== false) Object.assign(out, cropHW);
  } else if (edge !== null) {
    if (typeof c.crop_pct === 'number') {
      if (!(c.crop_pct > 0 && c.crop_pct <= 1)) bad('crop_pct', 'a number in (0, 1]');
      Object.assign(out, { height: edge, width: edge });
      if (edge < 384)
        Object.assign(out, { resize: 'shortest-edge', shortestEdge: Math.floor(edge / (c.crop_pct as number)) });
      else out.resize = 'exact';
    } else if (cropHW && c.do_center_crop !== false) {
      Object.assign(out, cropHW, { resize: 'shortest-edge', shortestEdge: edge });
    } else {
      Object.assign(out, { height: edge, width: edge, resize: 'shortest-edge', shortestEdge: edge });
    }
  } else if (hw) {
    Object.assign(out, hw, { resize: 'exact' });
  }
  if (c.resample !== undefined) {
    const kernel = typeof c.resample === 'number' ? PIL_RESAMPLE[c.resample] : undefined;
    out.resample = kernel ?? bad('resample', 'a PIL filter id 0–5');
  }
  if (c.do_rescale === false) out.rescale = 1;
  else if (c.rescale_factor !== undefined)
    out.rescale = typeof c.rescale_factor === 'number' ? c.rescale_factor : bad('rescale_factor', 'a number');
  if (c.do_normalize === false) {
    out.mean = [0, 0, 0];
    out.std = [1, 1, 1];
  } else {
    out.mean = triple('image_mean') ?? DEFAULT_MEAN;
    out.std = triple('image_std') ?? DEFAULT_STD;
  }
  return out;
}

/** Fills what neither config nor flags gave: bilinear, x/255, mean/std 0.5, RGB, exact resize. */
export function completePreprocessing(
  input: string,
  height: number,
  width: number,
  parts: Partial<ImagePreprocessing>,
  outputs: ImagePreprocessing['outputs'],
): ImagePreprocessing {
  const spec: ImagePreprocessing = {
    input,
    height,
    width,
    channels: parts.channels ?? 'rgb',
    resize: parts.resize ?? 'exact',
    resample: parts.resample ?? 'linear',
    rescale: parts.rescale ?? 1 / 255,
    mean: parts.mean ?? DEFAULT_MEAN,
    std: parts.std ?? DEFAULT_STD,
    outputs,
  };
  if (spec.resize === 'shortest-edge')
    spec.shortestEdge = Math.max(parts.shortestEdge ?? Math.max(height, width), height, width);
  return spec;
}

/**
 * Decodes one image and returns its tensor, [3, height, width] in `spec.channels` order.
 * Runs in sharp's thread pool, off the event loop. `where` names the input in errors.
 */
export async function preprocess(bytes: Uint8Array, spec: ImagePreprocessing, where: string): Promise<Float32Array> {
  const fail = (problem: string, cause?: unknown): never => {
    throw new KilnError(
      'KILN_ERR_INPUT_IMAGE',
      { where, problem, formats: IMAGE_FORMATS.join(', ').toUpperCase(), megapixels: MAX_IMAGE_PIXELS / 1e6 },
      { cause },
    );
  };
  if (bytes.length === 0) fail('it is empty');
  if (bytes.length > MAX_IMAGE_BYTES) fail(`it has ${bytes.length} bytes, more than ${MAX_IMAGE_BYTES}`);
  // Loaded on first use: every command imports this module, few decode images (sharp takes ~100 ms to load).
  const sharp = (await import('sharp')).default;
  const open = (): Sharp => sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error', sequentialRead: true });
  let meta: Metadata;
  try {
    meta = await open().metadata();
  } catch (err) {
    return fail(`it cannot be decoded (${(err as Error).message})`, err);
  }
  if (!(IMAGE_FORMATS as readonly string[]).includes(meta.format ?? ''))
    fail(`it is ${meta.format ? meta.format.toUpperCase() : 'of an unknown format'}`);
  if (!meta.width || !meta.height) fail('its size is unknown');
  if (meta.width * meta.height > MAX_IMAGE_PIXELS) fail(`it has ${meta.width} × ${meta.height} pixels`);
  const { height: H, width: W } = spec;
  const geometry = resizeGeometry(meta.width, meta.height, spec);
  if (!geometry)
    fail(`it is ${meta.width} × ${meta.height} pixels and this model takes exactly ${W} × ${H} (no resizing)`);
  const { resizeTo, crop } = geometry!;
  let data: Buffer;
  let info: OutputInfo;
  try {
    // Built inside the try: sharp refuses some geometries (a 1 × 400,001 image resized to a
    // 224-pixel shortest edge) synchronously, and that is the image's fault, not the server's.
    let pipeline = open().removeAlpha().toColourspace('srgb');
    if (resizeTo.width !== meta.width || resizeTo.height !== meta.height) {
      pipeline = pipeline.resize(resizeTo.width, resizeTo.height, {
        fit: 'fill',
        kernel: spec.resample,
        fastShrinkOnLoad: false,
      });
    }
    if (crop) pipeline = pipeline.extract(crop);
    ({ data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true }));
  } catch (err) {
    return fail(`it cannot be decoded (${(err as Error).message})`, err);
  }
  return toTensor(data, info.width, info.height, info.channels, spec);
}

/** Pixels (HWC, 8-bit) → CHW floats; a region narrower than the tensor leaves zeros on the right. */
export function toTensor(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  spec: ImagePreprocessing,
): Float32Array {
  const { height: H, width: W } = spec;
  const out = new Float32Array(3 * H * W);
  const order = spec.channels === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c += 1) {
    const source = order[c]!;
    const scale = spec.rescale / spec.std[c]!;
    const shift = spec.mean[c]! / spec.std[c]!;
    const plane = c * H * W;
    for (let y = 0; y < Math.min(height, H); y += 1) {
      for (let x = 0; x < Math.min(width, W); x += 1) {
        out[plane + y * W + x] = pixels[(y * width + x) * channels + Math.min(source, channels - 1)]! * scale - shift;
      }
    }
  }
  return out;
}

/** Where an image of `width` × `height` is resized to and what is cut out; null when it cannot be fitted (`none`). */
export function resizeGeometry(
  width: number,
  height: number,
  spec: Pick<ImagePreprocessing, 'height' | 'width' | 'resize' | 'shortestEdge'>,
): {
  resizeTo: { width: number; height: number };
  crop: { left: number; top: number; width: number; height: number } | null;
} | null {
  const { height: H, width: W } = spec;
  switch (spec.resize) {
    case 'none':
      return width === W && height === H ? { resizeTo: { width, height }, crop: null } : null;
    case 'exact':
      return { resizeTo: { width: W, height: H }, crop: null };
    case 'fit-height-pad':
      // PaddleOCR: resized_w = min(W, ceil(H × w / h)).
      return { resizeTo: { width: Math.max(1, Math.min(W, Math.ceil((H * width) / height))), height: H }, crop: null };
    case 'shortest-edge': {
      // transformers' get_resize_output_image_size: the long edge is truncated, not rounded.
      const edge = spec.shortestEdge ?? Math.max(H, W);
      const resizeTo =
        width <= height
          ? { width: edge, height: Math.floor((edge * height) / width) }
          : { width: Math.floor((edge * width) / height), height: edge };
      const crop =
        resizeTo.width === W && resizeTo.height === H
          ? null
          : {
              left: Math.floor((resizeTo.width - W) / 2),
              top: Math.floor((resizeTo.height - H) / 2),
              width: W,
              height: H,
            };
      return { resizeTo, crop };
    }
  }
}

/** "224", "48x192" → height, width. */
export function parseImageSize(value: string): { height: number; width: number } | null {
  const m = /^(\d+)(?:[x×](\d+))?$/.exec(value.trim());
  if (!m) return null;
  const height = Number(m[1]);
  const width = m[2] === undefined ? height : Number(m[2]);
  return height >= 1 && width >= 1 && height <= 4096 && width <= 4096 ? { height, width } : null;
}
