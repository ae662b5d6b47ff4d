//! Decoding and preprocessing: every supported format and colour mode, EXIF orientation,
//! odd sizes, and a clear error (never a panic) for every broken file.
use image::RgbImage;
use lqf::model::preprocess::{decode, normalise, preprocess, resize_crop, CROP};
use lqf::model::Arch;
use std::path::Path;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images").join(name)).unwrap()
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 180 && p[1] < 80 && p[2] < 80
}
fn is_blue(p: [u8; 3]) -> bool {
    p[2] > 180 && p[0] < 80 && p[1] < 80
}
fn px(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

#[test]
fn every_format_and_colour_mode_decodes_upright() {
    for name in ["rgb.jpg", "rgb.png", "rgb.bmp", "rgb.webp", "alpha.png", "cmyk.jpg", "palette.png", "anim.gif"] {
        let img = decode(&data(name), name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(img.dimensions(), (40, 20), "{name}");
        assert!(is_red(px(&img, 5, 10)), "{name}: left should be red, got {:?}", px(&img, 5, 10));
        // GIF: only the first (red) frame counts.
        if name == "anim.gif" {
            assert!(is_red(px(&img, 35, 10)), "{name}: first frame is all red");
        } else {
            assert!(is_blue(px(&img, 35, 10)), "{name}: right should be blue, got {:?}", px(&img, 35, 10));
        }
    }
    // Grayscale (8- and 16-bit) becomes equal RGB channels; red is brighter than blue in luma.
    for name in ["gray.png", "gray.jpg", "gray16.png"] {
        let img = decode(&data(name), name).unwrap_or_else(|e| panic!("{e}"));
        let (l, r) = (px(&img, 5, 10), px(&img, 35, 10));
        assert!(l[0] == l[1] && l[1] == l[2], "{name}: gray must stay gray");
        assert!((l[0] as i32 - 76).abs() <= 3 && (r[0] as i32 - 29).abs() <= 3, "{name}: {l:?} {r:?}");
    }
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 40×20 red|blue with Orientation = 6 (rotate 90° clockwise): displayed 20×40, red on top.
    let img = decode(&data("exif_rot90.jpg"), "exif_rot90.jpg").unwrap();
    assert_eq!(img.dimensions(), (20, 40));
    assert!(is_red(px(&img, 10, 5)), "{:?}", px(&img, 10, 5));
    assert!(is_blue(px(&img, 10, 35)), "{:?}", px(&img, 10, 35));
}

#[test]
fn broken_files_give_clear_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images/bad");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let err = decode(&std::fs::read(&path).unwrap(), &name).expect_err(&name);
        let msg = err.to_string();
        assert!(matches!(err, lqf::Error::Image { .. }), "{name}: {msg}");
        assert!(msg.contains(&name), "{name}: the message names the file: {msg}");
        if name.starts_with("huge") {
            assert!(msg.contains("too large"), "{name}: {msg}");
        }
        n += 1;
    }
    assert_eq!(n, 11, "every broken fixture was tried");
}

#[test]
fn resize_and_crop_any_shape() {
    for (w, h) in [(1, 1), (224, 224), (300, 200), (200, 300), (1, 5000), (5000, 3), (257, 1000)] {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let out = resize_crop(&img);
        assert_eq!(out.dimensions(), (CROP, CROP), "{w}x{h}");
    }
    // The centre survives: a centred white square on black stays in the middle of the crop.
    let img = RgbImage::from_fn(512, 384, |x, y| {
        let c = (x as i32 - 256).abs() < 40 && (y as i32 - 192).abs() < 40;
        image::Rgb(if c { [255; 3] } else { [0; 3] })
    });
    let out = resize_crop(&img);
    assert_eq!(out.get_pixel(112, 112).0, [255; 3]);
    assert_eq!(out.get_pixel(5, 5).0, [0; 3]);
}

#[test]
fn normalisation_per_backbone() {
    let img = RgbImage::from_pixel(2, 1, image::Rgb([255, 127, 0]));
    let m = normalise(&img, Arch::MobileNetV2);
    let want = [(1.0 - 0.485) / 0.229, (127.0 / 255.0 - 0.456) / 0.224, (0.0 - 0.406) / 0.225];
    for c in 0..3 {
        assert!((m[c] - want[c]).abs() < 1e-5, "{c}: {} vs {}", m[c], want[c]);
    }
    let e = normalise(&img, Arch::EfficientNetLite0);
    assert_eq!(&e[..3], &[1.0, 0.0, -127.0 / 128.0]);
    assert_eq!(preprocess(&data("rgb.png"), "rgb.png", Arch::MobileNetV2).unwrap().len(), 224 * 224 * 3);
}
