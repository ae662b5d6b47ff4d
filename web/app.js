// The page's controller: opens WebGPU through the wasm module and wires the buttons.
import init, { WebGpu } from './pkg/lqf.js';

const $ = (id) => document.getElementById(id);

async function main() {
  await init();
  let gpu;
  try {
    gpu = await WebGpu.open();
  } catch (e) {
    $('backend').textContent = `no WebGPU adapter: ${e.message ?? e}`;
    $('backend').classList.add('error');
    return;
  }
  $('backend').textContent = gpu.adapter;
  $('selftest').disabled = false;
  $('bench').disabled = false;

  $('selftest').addEventListener('click', async () => {
    const out = $('selftest-result');
    $('selftest').disabled = true;
    out.textContent = 'running…';
    out.className = '';
    try {
      out.textContent = await gpu.selfTest();
      out.className = 'ok';
    } catch (e) {
      out.textContent = `FAILED: ${e.message ?? e}`;
      out.className = 'error';
    }
    $('selftest').disabled = false;
  });

  // --- ImageNet classification with a pretrained backbone (weights served beside the page).
  let loadedArch = null;
  async function ensureBackbone() {
    const arch = $('arch').value;
    if (loadedArch === arch) return;
    $('arch-status').textContent = 'downloading weights…';
    const res = await fetch(`weights/${arch}.safetensors`);
    if (!res.ok) throw new Error(`weights/${arch}.safetensors: HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    gpu.loadBackbone(arch, bytes);
    loadedArch = arch;
    $('arch-status').textContent = `${arch} loaded (${(bytes.length / 1e6).toFixed(1)} MB)`;
  }
  async function classify(file) {
    const out = $('imagenet-top');
    $('arch-status').className = '';
    try {
      await ensureBackbone();
      $('imagenet-preview').src = URL.createObjectURL(file);
      $('imagenet-result').hidden = false;
      out.replaceChildren();
      const t0 = performance.now();
      const top = JSON.parse(await gpu.imagenet(new Uint8Array(await file.arrayBuffer()), file.name));
      $('arch-status').textContent = `${loadedArch}: ${(performance.now() - t0).toFixed(0)} ms`;
      out.replaceChildren(...top.map((t) => {
        const li = document.createElement('li');
        const bar = document.createElement('span');
        bar.className = 'bar';
        bar.style.width = `${(100 * t.score).toFixed(1)}%`;
        li.append(`${t.label} — ${(100 * t.score).toFixed(1)}%`, bar);
        return li;
      }));
    } catch (e) {
      $('arch-status').textContent = `error: ${e.message ?? e}`;
      $('arch-status').className = 'error';
    }
  }
  $('imagenet-file').addEventListener('change', (e) => e.target.files[0] && classify(e.target.files[0]));
  $('arch').addEventListener('change', () => { loadedArch = null; });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) classify(f);
  });
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') $('imagenet-file').click(); });

  $('bench').addEventListener('click', async () => {
    const status = $('bench-status');
    $('bench').disabled = true;
    status.textContent = 'measuring…';
    try {
      const figures = JSON.parse(await gpu.bench(3));
      const body = $('bench-table').querySelector('tbody');
      body.replaceChildren(...figures.map((f) => {
        const tr = document.createElement('tr');
        for (const v of [f.name, f.ms.toFixed(2), f.gflops.toFixed(2)]) {
          const td = document.createElement('td');
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }));
      $('bench-table').hidden = false;
      status.textContent = '';
    } catch (e) {
      status.textContent = `failed: ${e.message ?? e}`;
      status.className = 'error';
    }
    $('bench').disabled = false;
  });
}

main();
