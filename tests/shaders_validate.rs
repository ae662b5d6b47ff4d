//! Every WGSL file under shaders/ parses and validates with naga (the same front end wgpu uses),
//! and every file on disk is registered in `ALL_SHADERS` (or is the prelude they all start with)
//! so none escapes this test.
use lqf::gpu::pipeline::{ALL_SHADERS, PRELUDE};

#[test]
fn every_shader_parses_and_validates() {
    for s in ALL_SHADERS {
        let module = naga::front::wgsl::parse_str(s.source).unwrap_or_else(|e| panic!("{}: {}", s.name, e.emit_to_string(s.source)));
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
        v.validate(&module).unwrap_or_else(|e| panic!("{}: {}", s.name, e.emit_to_string(s.source)));
        assert!(!module.entry_points.is_empty(), "{} has no entry point", s.name);
    }
}

#[test]
fn every_shader_file_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl") && n != PRELUDE)
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = ALL_SHADERS.iter().map(|s| s.name.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered);
}

#[test]
fn every_shader_starts_with_the_prelude() {
    let prelude = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/common.wgsl")).unwrap();
    for s in ALL_SHADERS {
        assert!(s.source.starts_with(&prelude), "{}", s.name);
        assert_eq!(s.source.matches("fn leaky_relu6(").count(), 1, "{}: the activation is defined once", s.name);
    }
}
