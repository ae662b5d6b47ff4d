//! Trained-model files: a real round trip (train on MobileNetV2, save atomically, load, same
//! predictions) and a clear refusal of every bad file.
use lqf::gpu::{BackendChoice, Gpu};
use lqf::lqf::model_file::ModelFile;
use lqf::lqf::train::{self, Depth, Init, Settings, Trained};
use lqf::model::safetensors;
use lqf::model::{preprocess, Arch, Backbone};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn backbone(gpu: &Gpu, arch: Arch) -> Backbone {
    let w = std::fs::read(root().join(format!("weights/{}.safetensors", arch.id()))).unwrap();
    Backbone::from_weight_file(gpu, &w, Some(arch)).unwrap()
}

#[test]
fn trained_model_round_trips_and_bad_files_are_refused() {
    let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto)).unwrap();
    let net = backbone(&gpu, Arch::MobileNetV2);
    let names = ["chelsea_224.png", "coffee_224.png", "astronaut_224.png", "rocket_224.png"];
    let mut x = Vec::new();
    for n in names {
        x.extend(preprocess::preprocess(&std::fs::read(root().join("tests/data/golden").join(n)).unwrap(), n, Arch::MobileNetV2).unwrap());
    }
    let labels = [0u32, 1, 1, 1];
    let classes = vec!["cat".to_string(), "not cat".to_string()];
    // Depth 1 keeps this quick on a CPU driver while still saving convolution deltas.
    let settings = Settings { depth: Depth::Blocks(1), init: Init::Random { seed: 3 }, max_iter: 3, batch: 4, ..Default::default() };
    let split = train::split(&net, settings.depth, 2, settings.alpha).unwrap();
    let z = pollster::block_on(train::trunk_features(&gpu, &net, split.trunk_end, &x, 4)).unwrap();
    let trained = pollster::block_on(train::train(&gpu, split, &z, &labels, &settings, &mut |_| {})).unwrap();
    let before = pollster::block_on(train::predict(&gpu, &trained, &z, 4, 4)).unwrap();
    assert_eq!(train::accuracy(&before, &labels, 2), 1.0, "four training images are fitted");

    let file = pollster::block_on(trained.to_model_file(&gpu, &net, &classes)).unwrap();
    let bytes = file.to_bytes();
    let dir = std::env::temp_dir().join(format!("lqf-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cat.lqf");
    lqf::fsutil::write_atomic(&path, &bytes).unwrap();
    let loaded = ModelFile::from_bytes(&std::fs::read(&path).unwrap(), Some(&net.weights_sha256)).unwrap();
    assert_eq!(loaded, file);
    let again = Trained::from_model_file(&gpu, &net, &loaded).unwrap();
    let after = pollster::block_on(train::predict(&gpu, &again, &z, 4, 4)).unwrap();
    assert_eq!(before, after, "the same predictions after a round trip");
    let _ = std::fs::remove_dir_all(&dir);

    // Truncated anywhere, or not a model file at all.
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = ModelFile::from_bytes(&bytes[..cut], None).unwrap_err();
        assert!(matches!(err, lqf::Error::ModelFile(_)), "cut at {cut}: {err}");
    }
    let weights = std::fs::read(root().join("weights/mobilenet_v2.safetensors")).unwrap();
    assert!(ModelFile::from_bytes(&weights, None).unwrap_err().to_string().contains("not an LQF model file"));
    // A newer format version.
    let mut st = safetensors::read(&bytes).unwrap();
    st.metadata.insert("version".into(), "2".into());
    let newer = safetensors::write(&st, safetensors::Dtype::F32);
    assert!(ModelFile::from_bytes(&newer, None).unwrap_err().to_string().contains("newer than this build"));
    // Another weight file, another backbone.
    assert!(ModelFile::from_bytes(&bytes, Some("0000")).unwrap_err().to_string().contains("different mobilenet_v2 weight file"));
    let other = backbone(&gpu, Arch::EfficientNetLite0);
    assert!(Trained::from_model_file(&gpu, &other, &loaded).is_err());
    // Inconsistent shapes and non-finite values.
    // A delta that does not fit the backbone split is refused when the model is rebuilt…
    let mut broken = file.clone();
    broken.delta[0].pop();
    let parsed = ModelFile::from_bytes(&broken.to_bytes(), None).unwrap();
    let err = Trained::from_model_file(&gpu, &net, &parsed).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("do not match"), "{err}");
    // …and tensors that disagree with the file's own shape record are refused when parsed.
    let mut st = safetensors::read(&bytes).unwrap();
    st.metadata.insert("param_lens".into(), "[1, 2]".into());
    assert!(ModelFile::from_bytes(&safetensors::write(&st, safetensors::Dtype::F32), None).unwrap_err().to_string().contains("inconsistent shapes"));
    let mut nan = file.clone();
    nan.delta[1][0] = f32::NAN;
    assert!(ModelFile::from_bytes(&nan.to_bytes(), None).unwrap_err().to_string().contains("NaN"));
}
