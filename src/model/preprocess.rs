//! Image preprocessing, identical natively and in the browser: decode (JPEG, PNG, WebP, GIF's
//! first frame, BMP), apply EXIF orientation, convert to 8-bit RGB (grayscale, alpha, CMYK,
//! 16-bit), resize the short side to 256 and centre-crop 224, normalise for the backbone.
//!
//! Resize filter: triangle (bilinear) whose support widens with the downscale factor, i.e.
//! antialiased like PIL's BILINEAR that torchvision's `Resize` uses; the long side is
//! `floor(256·long/short)` and the crop offset `round((size − 224)/2)` (half to even), as there.
use super::arch::Arch;
use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, RgbImage};

/// Larger sides are refused before any pixel is decoded (a 20000×20000 photo would need 1.6 GB).
pub const MAX_SIDE: u32 = 12_000;
/// Decoder allocation cap.
pub const MAX_DECODE_BYTES: u64 = 600 << 20;
pub const RESIZE: u32 = 256;
pub const CROP: u32 = 224;

fn img_err(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::Image { name: name.to_string(), reason: reason.to_string() }
}

/// Decode any supported format to upright 8-bit RGB. `name` is only used in error messages.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(img_err(name, "empty file"));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| img_err(name, e))?;
    if reader.format().is_none() {
        return Err(img_err(name, "not a recognised image (JPEG, PNG, WebP, GIF or BMP)"));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| describe(name, e))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(img_err(name, format!("image has no pixels ({w}×{h})")));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| describe(name, e))?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

fn describe(name: &str, e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(_) => img_err(name, format!("image too large: the limit is {MAX_SIDE}×{MAX_SIDE} pixels ({e})")),
        image::ImageError::Unsupported(u) => img_err(name, format!("unsupported image: {u}")),
        other => img_err(name, format!("corrupt or truncated image: {other}")),
    }
}

/// Python's round() of d/2: half to even.
fn half_round_even(d: u32) -> u32 {
    let f = d / 2;
    if d % 2 == 1 && f % 2 == 1 {
        f + 1
    } else {
        f
    }
}

/// Resize the short side to `RESIZE`, then crop the centre `CROP`×`CROP`.
///
/// The crop only ever uses the central 224/256 of the short side's length along the long side,
/// so a long side beyond twice the short one is cut to that first (centred): a 1×5000 strip
/// would otherwise be resized to 256×1 280 000 pixels before being cropped.
pub fn resize_crop(img: &RgbImage) -> RgbImage {
    let (w0, h0) = img.dimensions();
    let cropped;
    let img = if w0 > 2 * h0 || h0 > 2 * w0 {
        let (cw, ch) = (w0.min(2 * h0), h0.min(2 * w0));
        cropped = image::imageops::crop_imm(img, (w0 - cw) / 2, (h0 - ch) / 2, cw, ch).to_image();
        &cropped
    } else {
        img
    };
    let (w, h) = img.dimensions();
    let (nw, nh) = if w <= h {
        (RESIZE, ((RESIZE as u64 * h as u64) / w as u64).max(RESIZE as u64) as u32)
    } else {
        (((RESIZE as u64 * w as u64) / h as u64).max(RESIZE as u64) as u32, RESIZE)
    };
    let resized = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
    let (left, top) = (half_round_even(nw - CROP), half_round_even(nh - CROP));
    image::imageops::crop_imm(&resized, left, top, CROP, CROP).to_image()
}

/// RGB → NHWC f32 with the backbone's normalisation.
pub fn normalise(img: &RgbImage, arch: Arch) -> Vec<f32> {
    let n = arch.normalisation();
    img.pixels().flat_map(|p| [0, 1, 2].map(|c| p.0[c] as f32 * n[c].0 + n[c].1)).collect()
}

/// File bytes → the backbone's 224×224×3 input.
pub fn preprocess(bytes: &[u8], name: &str, arch: Arch) -> Result<Vec<f32>> {
    let img = decode(bytes, name)?;
    Ok(normalise(&resize_crop(&img), arch))
}

/// RGBA pixels (a canvas's `ImageData`, rows top to bottom) → the backbone's input, through the
/// same resize and crop as a file. The page decodes with the browser (off the main thread, any
/// format it knows, EXIF applied) and hands the pixels here.
pub fn preprocess_rgba(rgba: &[u8], width: u32, height: u32, name: &str, arch: Arch) -> Result<Vec<f32>> {
    if width == 0 || height == 0 {
        return Err(img_err(name, format!("image has no pixels ({width}×{height})")));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(img_err(name, format!("image too large: the limit is {MAX_SIDE}×{MAX_SIDE} pixels")));
    }
    if rgba.len() != width as usize * height as usize * 4 {
        return Err(img_err(name, format!("{} bytes are not {width}×{height} RGBA pixels", rgba.len())));
    }
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let img = RgbImage::from_raw(width, height, rgb).ok_or_else(|| img_err(name, "pixel buffer size"))?;
    Ok(normalise(&resize_crop(&img), arch))
}
