//! Weight-file readers: PyTorch legacy and zip checkpoints (tiny fixtures from
//! tests/data/make_checkpoints.py), safetensors round trips, and clear errors on damaged files.
use lqf::model::checkpoint::{self, NamedTensor};
use lqf::model::safetensors::{self, Dtype, SafeTensors};
use lqf::model::{weights, Arch};
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoints").join(name)).unwrap()
}

fn get<'a>(ts: &'a [NamedTensor], name: &str) -> &'a NamedTensor {
    ts.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} missing"))
}

fn check_tiny(ts: &[NamedTensor]) {
    assert_eq!(ts.len(), 5);
    let w = get(ts, "layer.weight");
    assert_eq!((w.shape.as_slice(), w.data.as_slice()), (&[2, 3][..], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0][..]));
    let wt = get(ts, "layer.weight_t");
    assert_eq!((wt.shape.as_slice(), wt.data.as_slice()), (&[3, 2][..], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0][..]), "strided view");
    assert_eq!(get(ts, "layer.bias").data, vec![0.5, -1.5, 2.25], "nn.Parameter unwrapped");
    let n = get(ts, "bn.num_batches_tracked");
    assert_eq!((n.shape.len(), n.data.as_slice()), (0, &[1234.0][..]), "int64 scalar");
    assert_eq!(get(ts, "tail").data, vec![-1.5, 2.25], "storage offset");
}

#[test]
fn legacy_and_zip_checkpoints_read_the_same() {
    check_tiny(&checkpoint::read(&fixture("tiny_legacy.pth")).unwrap());
    check_tiny(&checkpoint::read(&fixture("tiny_zip.pth")).unwrap());
}

#[test]
fn damaged_checkpoints_are_clear_errors() {
    for name in ["tiny_legacy.pth", "tiny_zip.pth"] {
        let b = fixture(name);
        for cut in [0, 1, 10, b.len() / 3, b.len() / 2, b.len() - 3] {
            let err = checkpoint::read(&b[..cut]).expect_err(&format!("{name} cut at {cut}"));
            assert!(matches!(err, lqf::Error::Checkpoint(_)), "{name}@{cut}: {err}");
        }
    }
    assert!(checkpoint::read(b"\x80\x02garbage").is_err());
}

#[test]
fn safetensors_round_trip_f32_and_f16() {
    let ts = checkpoint::read(&fixture("tiny_zip.pth")).unwrap();
    let st = SafeTensors { tensors: ts.clone(), metadata: [("k".to_string(), "v".to_string())].into() };
    let back = safetensors::read(&safetensors::write(&st, Dtype::F32)).unwrap();
    assert_eq!(back, st);
    let half = safetensors::read(&safetensors::write(&st, Dtype::F16)).unwrap();
    for (a, b) in half.tensors.iter().zip(&ts) {
        assert_eq!(a.shape, b.shape);
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() <= y.abs() * 1e-3, "{x} vs {y}");
        }
    }
    // Via the generic reader too.
    assert_eq!(checkpoint::read(&safetensors::write(&st, Dtype::F32)).unwrap(), ts);
    let bytes = safetensors::write(&st, Dtype::F32);
    assert!(safetensors::read(&bytes[..bytes.len() - 4]).is_err(), "truncated data");
}

#[test]
fn conversion_validates_names_and_shapes() {
    let tiny = checkpoint::read(&fixture("tiny_zip.pth")).unwrap();
    let err = weights::convert(Arch::MobileNetV2, &tiny, "tiny", "0", Dtype::F32).unwrap_err().to_string();
    assert!(err.contains("262 missing: features.0.0.weight") && err.contains("4 unexpected tensor: layer.weight"), "{err}");
    // The bundled file converts to itself: every tensor present, in order, with provenance.
    let bundled = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mobilenet_v2.safetensors")).unwrap();
    let wf = weights::load(&bundled, Some(Arch::MobileNetV2)).unwrap();
    let again = weights::convert(
        Arch::MobileNetV2,
        &wf.tensors,
        "mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        Dtype::F32,
    )
    .unwrap();
    assert_eq!(weights::sha256_hex(&again), wf.sha256, "conversion is deterministic and matches the bundled file");
    // One wrong shape is named.
    let mut bad = wf.tensors.clone();
    bad[0].shape = vec![32, 3, 5, 5];
    let err = weights::convert(Arch::MobileNetV2, &bad, "x", "0", Dtype::F32).unwrap_err().to_string();
    assert!(err.contains("features.0.0.weight has shape [32, 3, 5, 5], expected [32, 3, 3, 3]"), "{err}");
}
