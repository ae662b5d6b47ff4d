// Scratch: time a GEMM shader file given on the command line. args: file entry wgx wgy tm tn
use wgpu::util::DeviceExt;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&args[1]).unwrap();
    let entry = args[2].clone();
    let (tile_n, tile_m): (u32, u32) = (args[3].parse().unwrap(), args[4].parse().unwrap());
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default())).unwrap();
    let dev = &gpu.device;
    let desc = wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.into()) };
    let m = if std::env::var_os("LAB_TRUSTED").is_some() { unsafe { dev.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks { bounds_checks: std::env::var_os("LAB_BOUNDS").is_some(), force_loop_bounding: false, ray_query_initialization_tracking: false, task_shader_dispatch_tracking: false, mesh_shader_primitive_indices_clamp: false, int_div_checks: false }) } } else { dev.create_shader_module(desc) };
    let p = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor { label: None, layout: None, module: &m, entry_point: Some(&entry), compilation_options: Default::default(), cache: None });
    for &n in &[512u32, 1024] {
        let nn = (n * n) as usize;
        let av: Vec<f32> = (0..nn).map(|i| ((i * 7 % 13) as f32) * 0.1).collect();
        let bv: Vec<f32> = (0..nn).map(|i| ((i * 5 % 11) as f32) * 0.1).collect();
        let a = gpu.upload(&av).unwrap(); let b = gpu.upload(&bv).unwrap(); let c = gpu.zeros(nn).unwrap();
        let params: Vec<u32> = vec![n, n, n, 1, n, n, n, 0, 0, 0, 0, 0, nn as u32, nn as u32, nn as u32, 0, 1f32.to_bits(), 0, 0, 0];
        let u = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&params), usage: wgpu::BufferUsages::UNIFORM });
        let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &p.get_bind_group_layout(0), entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: a.buffer().as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: b.buffer().as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: c.buffer().as_entire_binding() },
            wgpu::BindGroupEntry { binding: 3, resource: u.as_entire_binding() }] });
        let run = || { let mut e = dev.create_command_encoder(&Default::default()); { let mut ps = e.begin_compute_pass(&Default::default()); ps.set_pipeline(&p); ps.set_bind_group(0, &bg, &[]); ps.dispatch_workgroups(n.div_ceil(tile_n), n.div_ceil(tile_m), 1); } gpu.queue.submit([e.finish()]); gpu.wait().unwrap(); };
        run();
        let mut s = f64::MAX; for _ in 0..5 { let t = std::time::Instant::now(); run(); s = s.min(t.elapsed().as_secs_f64()); }
        let out = pollster::block_on(gpu.read(&c)).unwrap();
        // check a few entries
        let mut maxerr = 0f32;
        for &(i, j) in &[(0usize, 0usize), (1, 2), (n as usize - 1, n as usize - 1), (100, 37)] {
            let mut s = 0f64; for k in 0..n as usize { s += av[i * n as usize + k] as f64 * bv[k * n as usize + j] as f64; }
            maxerr = maxerr.max(((out[i * n as usize + j] as f64 - s).abs() / s.abs().max(1.0)) as f32);
        }
        println!("n={n}: {:.2} GFLOP/s  relerr {maxerr:.1e}", 2.0 * (n as f64).powi(3) / s / 1e9);
    }
}
