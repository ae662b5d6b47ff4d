//! Every WGSL file under shaders/ parses and validates with naga (the same front end wgpu uses),
//! and every file on disk is registered in `ALL_SHADERS` so none escapes this test.
use lqf::gpu::pipeline::ALL_SHADERS;

#[test]
fn every_shader_parses_and_validates() {
    for s in ALL_SHADERS {
        let module = naga::front::wgsl::parse_str(s.source)
            .unwrap_or_else(|e| panic!("{}: {}", s.name, e.emit_to_string(s.source)));
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
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = ALL_SHADERS.iter().map(|s| s.name.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered);
}
