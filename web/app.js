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
