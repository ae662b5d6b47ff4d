// The page's controller: classes and photos, training with progress, prediction with
// explanations, model and project files. The GPU work happens in wasm (src/web/); one job runs
// on it at a time (the queue below), and every call is async, so the page never freezes.
import init, { CpuTrainer, WebGpu } from './pkg/lqf.js';
import { pixels, thumbnail, droppedFiles, Webcam } from './images.js';
import { writeZip, readZip } from './zip.js';

const $ = (id) => document.getElementById(id);
const ARCH = 'mobilenet_v2';
const SAMPLES = 'web/samples/eurosat';
const SHOWN_THUMBS = 48;

const state = {
  classes: [], // [{name, images: [{id, name, blob, thumb}]}]
  nextId: 1,
  dirty: false, // photos or a model not yet exported
  modelClasses: null, // classes of the trained or imported model
  lastPhoto: null, // the blob last classified
  lossPoints: [],
};
let gpu = null;
let trainer = null;

// One GPU job at a time, in order; a failed job does not stop the ones after it.
let queue = Promise.resolve();
function enqueue(job) {
  const run = queue.then(job);
  queue = run.catch(() => {});
  return run;
}

const message = (e) => (e && e.message) || String(e);
const megabytes = (b) => (b < 1e6 ? `${(b / 1e3).toFixed(0)} kB` : `${(b / 1e6).toFixed(1)} MB`);

function setStatus(el, text, kind = '') {
  el.textContent = text;
  el.className = `status ${kind}`;
}

function markDirty() {
  state.dirty = true;
}

window.addEventListener('beforeunload', (e) => {
  if (state.dirty) {
    e.preventDefault();
    e.returnValue = '';
  }
});

// ---------------------------------------------------------------- classes and photos

function findClass(name) {
  return state.classes.find((c) => c.name === name);
}

function addClass(name) {
  name = name.trim();
  if (!name) throw new Error('a class needs a name');
  if (/[\\/]/.test(name)) throw new Error('a class name cannot contain / or \\');
  if (findClass(name)) return findClass(name);
  const cls = { name, images: [] };
  state.classes.push(cls);
  renderClasses();
  markDirty();
  return cls;
}

function uniqueName(cls, name) {
  const taken = new Set(cls.images.map((i) => i.name));
  if (!taken.has(name)) return name;
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  for (let k = 2; ; k++) if (!taken.has(`${stem}_${k}${ext}`)) return `${stem}_${k}${ext}`;
}

/// Add photos to a class: each is checked by decoding its thumbnail; bad files are reported by
/// name, never fatal. Features follow in the background (`feedFeatures`).
async function addPhotos(cls, files) {
  const status = $('images-status');
  if (!trainer) {
    setStatus(status, 'The network is still loading; add the photos again in a moment.', 'error');
    return;
  }
  const skipped = [];
  let added = 0;
  for (const [k, { file, name }] of files.entries()) {
    if (k % 16 === 0) setStatus(status, `reading photos: ${k}/${files.length}…`);
    try {
      const id = state.nextId++;
      const img = { id, name: uniqueName(cls, name || file.name || `photo-${id}.jpg`), blob: file, thumb: await thumbnail(file), queued: false };
      cls.images.push(img);
      added++;
    } catch (e) {
      skipped.push(`${name || file.name}: ${message(e)}`);
    }
  }
  if (added) markDirty();
  renderClasses();
  const note = skipped.length ? ` Skipped ${skipped.length}: ${skipped.slice(0, 5).join('; ')}${skipped.length > 5 ? '; …' : ''}` : '';
  setStatus(status, `added ${added} photo${added === 1 ? '' : 's'} to ${cls.name}.${note}`, skipped.length ? 'warn' : '');
  computeFeatures();
}

/// Hand photos without features to wasm a chunk at a time and run the network over each chunk,
/// so that only a chunk of full-size inputs is ever held (2000 photos at once would need 1.2 GB).
/// Not queued itself: callers run it inside the queue.
const FEED_CHUNK = 16;
async function feedFeatures(onProgress) {
  for (;;) {
    const todo = state.classes.flatMap((c) => c.images.filter((i) => !i.queued).map((img) => ({ cls: c, img })));
    if (todo.length === 0 && !trainer.pendingCount) return;
    for (const { cls, img } of todo.slice(0, FEED_CHUNK)) {
      img.queued = true;
      try {
        const px = await pixels(img.blob);
        trainer.addImage(img.id, px.rgba, px.width, px.height, img.name);
      } catch (e) {
        setStatus($('images-status'), `${cls.name}/${img.name} removed: ${message(e)}`, 'warn');
        removePhoto(cls, img);
      }
    }
    await trainer.computeFeatures(() => {});
    if (onProgress) onProgress(trainer.featureCount, state.classes.reduce((n, c) => n + c.images.length, 0));
  }
}

/// Features of newly added photos, in the background.
function computeFeatures() {
  return enqueue(async () => {
    const status = $('images-status');
    const before = status.textContent.replace(/ Features.*$/, '');
    await feedFeatures((done, total) => setStatus(status, `${before} Features: ${done}/${total}`));
    setStatus(status, `${before} Features ready for ${trainer.featureCount} photos (${megabytes(trainer.featureBytes)}).`);
  }).catch((e) => setStatus($('images-status'), `features failed: ${message(e)}`, 'error'));
}

function removePhoto(cls, img) {
  cls.images = cls.images.filter((i) => i !== img);
  trainer.removeImage(img.id);
  if (img.thumb) URL.revokeObjectURL(img.thumb);
  markDirty();
  renderClasses();
}

function deleteClass(cls) {
  if (cls.images.length && !confirm(`Delete class "${cls.name}" and its ${cls.images.length} photos?`)) return;
  cls.images.forEach((i) => {
    trainer.removeImage(i.id);
    if (i.thumb) URL.revokeObjectURL(i.thumb);
  });
  state.classes = state.classes.filter((c) => c !== cls);
  markDirty();
  renderClasses();
}

function renameClass(cls, input) {
  const name = input.value.trim();
  if (!name || /[\\/]/.test(name) || (name !== cls.name && findClass(name))) {
    input.value = cls.name;
    setStatus($('images-status'), name ? `cannot rename to "${name}": the name is taken or has a slash` : 'a class needs a name', 'error');
    return;
  }
  cls.name = name;
  markDirty();
  renderClasses();
}

const camera = new Webcam($('camera'));

/// Turn the camera off and hide its preview (after a burst, or when live prediction stops).
function releaseCamera() {
  camera.stop();
  $('camera').hidden = true;
}

/// Hold (pointer, Space or Enter) to capture a burst of webcam frames into a class.
function recordButton(cls) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = 'Hold to record';
  b.className = 'record';
  b.setAttribute('aria-label', `Hold to record photos of ${cls.name} with the camera`);
  let timer = null;
  const frames = [];
  const start = async () => {
    if (timer) return;
    try {
      $('camera').hidden = false;
      await camera.start();
    } catch (e) {
      setStatus($('images-status'), `camera: ${message(e)}`, 'error');
      return;
    }
    b.classList.add('recording');
    timer = setInterval(async () => {
      try {
        frames.push({ file: await camera.frame(), name: `camera-${Date.now()}.jpg` });
      } catch {
        // the camera stopped between two frames
      }
    }, 150);
  };
  const stop = async () => {
    if (!timer) return;
    clearInterval(timer);
    timer = null;
    b.classList.remove('recording');
    if (!live) releaseCamera();
    const got = frames.splice(0);
    if (got.length) await addPhotos(cls, got);
  };
  b.addEventListener('pointerdown', start);
  b.addEventListener('pointerup', stop);
  b.addEventListener('pointerleave', stop);
  b.addEventListener('keydown', (e) => {
    if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) {
      e.preventDefault();
      start();
    }
  });
  b.addEventListener('keyup', (e) => {
    if (e.key === ' ' || e.key === 'Enter') stop();
  });
  return b;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'for' || k === 'role') e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

function renderClasses() {
  const root = $('classes');
  root.replaceChildren(
    ...state.classes.map((cls, ci) => {
      const upId = `class-upload-${ci}`;
      const upload = el('input', { type: 'file', multiple: true, accept: 'image/*', id: upId, className: 'visually-hidden', dataset: { testid: 'class-upload' } });
      upload.addEventListener('change', () => {
        const files = [...upload.files].map((file) => ({ file, name: file.name }));
        upload.value = '';
        addPhotos(cls, files);
      });
      const name = el('input', { value: cls.name, className: 'class-name', 'aria-label': `name of class ${cls.name}` });
      name.addEventListener('change', () => renameClass(cls, name));
      const del = el('button', { type: 'button', className: 'icon', textContent: '×', title: 'delete class', 'aria-label': `delete class ${cls.name}` });
      del.addEventListener('click', () => deleteClass(cls));
      const thumbs = el('ul', { className: 'thumbs' });
      for (const img of cls.images.slice(0, SHOWN_THUMBS)) {
        const rm = el('button', { type: 'button', className: 'icon rm', textContent: '×', 'aria-label': `remove ${img.name}` });
        rm.addEventListener('click', () => removePhoto(cls, img));
        thumbs.append(el('li', {}, el('img', { src: img.thumb, alt: `${cls.name}/${img.name}`, width: 64, height: 64 }), rm));
      }
      if (cls.images.length > SHOWN_THUMBS) thumbs.append(el('li', { className: 'more' }, `+${cls.images.length - SHOWN_THUMBS} more`));
      const card = el(
        'article',
        { className: 'class-card', dataset: { testid: 'class-card', class: cls.name }, 'aria-label': `class ${cls.name}` },
        el('header', {}, name, el('span', { className: 'count' }, el('span', { dataset: { testid: 'class-count' }, textContent: String(cls.images.length) }), ' photos'), del),
        el('div', { className: 'actions' }, el('label', { for: upId, className: 'button', textContent: 'Add photos' }), upload, recordButton(cls)),
        thumbs,
      );
      card.addEventListener('dragover', (e) => {
        e.preventDefault();
        e.stopPropagation();
        card.classList.add('over');
      });
      card.addEventListener('dragleave', () => card.classList.remove('over'));
      card.addEventListener('drop', async (e) => {
        e.preventDefault();
        e.stopPropagation();
        card.classList.remove('over');
        const files = await droppedFiles(e.dataTransfer);
        addPhotos(cls, files.map(({ file }) => ({ file, name: file.name })));
      });
      return card;
    }),
  );
  $('train').disabled = !trainer;
}

/// Files with folder paths → one class per parent folder ("x/cats/a.jpg" goes to "cats").
async function addByFolder(files) {
  const groups = new Map();
  for (const { file, path } of files) {
    const parts = path.split('/');
    if (parts.length < 2 || !/\.(jpe?g|png|webp|gif|bmp|avif)$/i.test(file.name || parts.at(-1))) continue;
    const name = parts.at(-2);
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push({ file, name: parts.at(-1) });
  }
  if (groups.size === 0) throw new Error('drop folders of photos (one folder per class), or drop photos on a class');
  for (const [name, list] of groups) await addPhotos(addClass(name), list);
}

$('classes-section').addEventListener('dragover', (e) => e.preventDefault());
$('classes-section').addEventListener('drop', async (e) => {
  e.preventDefault();
  try {
    await addByFolder(await droppedFiles(e.dataTransfer));
  } catch (err) {
    setStatus($('images-status'), message(err), 'error');
  }
});

$('add-class-form').addEventListener('submit', (e) => {
  e.preventDefault();
  try {
    addClass($('new-class-name').value);
    $('new-class-name').value = '';
  } catch (err) {
    setStatus($('images-status'), message(err), 'error');
  }
});

let manifest = null;
async function sampleManifest() {
  if (!manifest) {
    const res = await fetch(`${SAMPLES}/manifest.json`);
    if (!res.ok) throw new Error(`sample list: HTTP ${res.status}`);
    manifest = await res.json();
  }
  return manifest;
}

async function fetchBlob(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.blob();
}

$('samples').addEventListener('click', async () => {
  const b = $('samples');
  b.disabled = true;
  try {
    const m = await sampleManifest();
    for (const [name, files] of Object.entries(m.train)) {
      const cls = addClass(name);
      const have = new Set(cls.images.map((i) => i.name));
      const blobs = await Promise.all(files.filter((f) => !have.has(f)).map(async (f) => ({ file: await fetchBlob(`${SAMPLES}/train/${name}/${f}`), name: f })));
      await addPhotos(cls, blobs);
    }
    setStatus($('images-status'), `Loaded the EuroSAT sample: ${Object.keys(m.train).length} land-use classes from satellite photos, 5 each. Now press Train.`);
  } catch (e) {
    setStatus($('images-status'), `samples: ${message(e)}`, 'error');
  }
  b.disabled = false;
});

// ---------------------------------------------------------------- training

function settings() {
  const method = $('method').value;
  return {
    method,
    depth: method === 'probe' ? 'probe' : $('depth').value,
    alpha: Number($('alpha').value),
    kappa: Number($('kappa').value),
    weight_decay: $('weight-decay').value.trim() || 'auto',
    solver: $('solver').value,
    iterations: Number($('iterations').value),
    lr: Number($('lr').value),
    epochs: Number($('epochs').value),
  };
}

/// The features are per depth: when it changes, read every photo again for the new split.
async function ensureDepth(depth) {
  if (trainer.setDepth(depth)) state.classes.forEach((c) => c.images.forEach((i) => (i.queued = false)));
  await feedFeatures((done, total) => setTrainState('running', `computing features for depth ${depth}: ${done}/${total}`));
}

// A new depth (or the probe) needs other features: recompute them in the background now rather
// than when Train is pressed.
for (const id of ['method', 'depth']) {
  $(id).addEventListener('change', () => {
    if (!trainer) return;
    const depth = settings().depth;
    enqueue(async () => {
      if (!trainer.setDepth(depth)) return;
      state.classes.forEach((c) => c.images.forEach((i) => (i.queued = false)));
      setStatus($('images-status'), `computing features for depth ${depth}…`);
      await feedFeatures((done, total) => setStatus($('images-status'), `features for depth ${depth}: ${done}/${total}`));
      setStatus($('images-status'), `Features ready for ${trainer.featureCount} photos (${megabytes(trainer.featureBytes)}).`);
    }).catch((e) => setStatus($('images-status'), `features failed: ${message(e)}`, 'error'));
  });
}

function setTrainState(s, text) {
  const st = $('train-status');
  st.dataset.state = s;
  st.textContent = text;
  st.className = s === 'error' ? 'error' : '';
}

// What the status line says of λ's provenance (the trainer's `lambda_origin`).
const LAMBDA_ORIGIN = {
  cross_validated: ', chosen by 5-fold cross-validation on your photos',
  not_cross_validated: ' (not cross-validated: no class has 3 photos, so the default λ was used; add photos or set λ under Advanced)',
};
const PHASES = { features: 'computing features', init: 'initialising the classifier', curvature: 'K-FAC curvature', lambda_search: 'choosing λ on held-out photos', solve: 'solving' };

function drawLoss() {
  const c = $('loss');
  const ctx = c.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 600;
  const h = c.clientHeight || 160;
  c.width = w * dpr;
  c.height = h * dpr;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pts = state.lossPoints.filter((p) => p.loss > 0 && Number.isFinite(p.loss));
  ctx.fillStyle = '#667';
  ctx.font = '12px system-ui, sans-serif';
  if (pts.length === 0) {
    ctx.fillText('the training loss appears here', 10, h / 2);
    return;
  }
  const ys = pts.map((p) => Math.log10(p.loss));
  const [lo, hi] = [Math.min(...ys), Math.max(...ys) + 1e-9];
  const maxX = Math.max(1, pts.at(-1).step);
  const X = (s) => 40 + ((w - 50) * s) / maxX;
  const Y = (v) => 10 + ((h - 30) * (hi - v)) / (hi - lo || 1);
  ctx.fillText(`loss ${pts[0].loss.toExponential(1)}`, 42, 12);
  ctx.fillText(`${pts.at(-1).loss.toExponential(1)} at iteration ${pts.at(-1).step}`, Math.max(42, w - 200), h - 6);
  ctx.strokeStyle = '#2563eb';
  ctx.lineWidth = 2;
  ctx.beginPath();
  pts.forEach((p, i) => (i ? ctx.lineTo(X(p.step), Y(ys[i])) : ctx.moveTo(X(p.step), Y(ys[i]))));
  ctx.stroke();
}

$('train-form').addEventListener('submit', (e) => {
  e.preventDefault();
  train();
});

async function train() {
  const s = settings();
  const used = state.classes.filter((c) => c.images.length > 0);
  const empty = state.classes.filter((c) => c.images.length === 0).map((c) => c.name);
  if (used.length < 2) {
    setTrainState('error', 'Training needs at least 2 classes with photos.');
    return;
  }
  if (empty.length) {
    setTrainState('error', `Add photos to ${empty.join(', ')} or delete ${empty.length > 1 ? 'those classes' : 'that class'} first.`);
    return;
  }
  $('train').disabled = true;
  $('cancel').disabled = false;
  cancelRequested = false;
  state.lossPoints = [];
  drawLoss();
  setTrainState('running', 'starting…');
  const t0 = performance.now();
  try {
    const summary = await enqueue(async () => {
      await ensureDepth(s.depth);
      const ids = [];
      const labels = [];
      const names = [];
      used.forEach((c, ci) =>
        c.images.forEach((img) => {
          ids.push(img.id);
          labels.push(ci);
          names.push(`${c.name}/${img.name}`);
        }),
      );
      const onProgress = (json) => {
        const p = JSON.parse(json);
        $('phase').textContent = `${PHASES[p.phase] || p.phase} ${p.step}/${p.total}`;
        $('progress').value = p.total ? p.step / p.total : 0;
        if (p.phase === 'solve' && p.loss != null) {
          state.lossPoints.push({ step: p.step, loss: p.loss });
          drawLoss();
        }
        setTrainState('running', `${PHASES[p.phase] || p.phase}…`);
      };
      const classes = used.map((c) => c.name);
      if (cancelRequested) throw new Error('cancelled');
      const out = JSON.parse(await trainer.train(Uint32Array.from(ids), Uint32Array.from(labels), JSON.stringify(classes), JSON.stringify(names), JSON.stringify(s), onProgress));
      state.modelClasses = classes;
      return out;
    });
    const secs = (performance.now() - t0) / 1000;
    const fit = (100 * summary.train_accuracy).toFixed(0);
    const how = summary.method === 'lqf' ? `LQF, last ${summary.depth} block${summary.depth === '1' ? '' : 's'}, ${summary.iterations} CG iterations, λ = ${summary.lambda.toExponential(0)}${LAMBDA_ORIGIN[summary.lambda_origin] ?? ''}` : 'linear probe';
    setTrainState('done', `Trained in ${secs.toFixed(1)} s on ${summary.images} photos (${how}); fits ${fit}% of them.`);
    $('train-status').dataset.seconds = secs.toFixed(1);
    $('phase').textContent = 'done';
    $('progress').value = 1;
    $('export-model').disabled = false;
    markDirty();
    if (state.lastPhoto) classify(state.lastPhoto);
  } catch (e) {
    const m = message(e);
    if (m === 'cancelled') setTrainState('idle', 'Cancelled.');
    else setTrainState('error', `Training failed: ${m}`);
    $('phase').textContent = 'idle';
  }
  $('train').disabled = false;
  $('cancel').disabled = true;
}

// Cancel before the queued job reached the GPU is caught here; after, by the GPU's flag.
let cancelRequested = false;
$('cancel').addEventListener('click', () => {
  cancelRequested = true;
  if (trainer) trainer.cancel();
});

// ---------------------------------------------------------------- prediction and explanation

function thumbOf(id) {
  for (const c of state.classes) for (const i of c.images) if (i.id === id) return { cls: c, img: i };
  return null;
}

async function classify(blob) {
  state.lastPhoto = blob;
  $('why').hidden = true;
  const out = $('prediction');
  try {
    const px = await pixels(blob);
    const r = JSON.parse(await enqueue(() => trainer.predict(px.rgba, px.width, px.height)));
    if (!$('preview').src || !live) {
      if ($('preview').src) URL.revokeObjectURL($('preview').src);
      $('preview').src = URL.createObjectURL(blob);
    }
    $('result').hidden = false;
    out.dataset.class = r.class;
    out.textContent = `It is ${r.class}.`;
    const scores = [...r.scores].sort((a, b) => b.score - a.score);
    $('scores').replaceChildren(
      ...scores.map((s) => {
        const pct = Math.max(0, Math.min(1, s.score));
        const bar = el('span', { className: 'bar' });
        bar.style.width = `${(100 * pct).toFixed(1)}%`;
        return el('li', { dataset: { class: s.class } }, el('span', { className: 'label' }, `${s.class} `, el('small', {}, s.score.toFixed(2))), bar);
      }),
    );
  } catch (e) {
    out.dataset.class = '';
    out.textContent = message(e).includes('no trained model') ? 'Train a model (or import one) first.' : `Could not classify: ${message(e)}`;
    $('result').hidden = false;
  }
}

$('predict-upload').addEventListener('change', (e) => {
  const f = e.target.files[0];
  e.target.value = '';
  if (f) classify(f);
});
const drop = $('predict-drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer.files[0];
  if (f) classify(f);
});
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') $('predict-upload').click();
});

$('predict-sample').addEventListener('click', async () => {
  try {
    const m = await sampleManifest();
    const names = Object.keys(m.test).filter((c) => !state.modelClasses || state.modelClasses.includes(c));
    const cls = names[Math.floor(Math.random() * names.length)];
    const f = m.test[cls][Math.floor(Math.random() * m.test[cls].length)];
    classify(await fetchBlob(`${SAMPLES}/test/${cls}/${f}`));
  } catch (e) {
    $('prediction').textContent = message(e);
  }
});

let live = false;
$('live').addEventListener('click', async () => {
  live = !live;
  $('live').setAttribute('aria-pressed', String(live));
  $('live').textContent = live ? 'Stop camera' : 'Live camera';
  if (!live) {
    releaseCamera();
    return;
  }
  try {
    $('camera').hidden = false;
    await camera.start();
  } catch (e) {
    live = false;
    $('prediction').textContent = `camera: ${message(e)}`;
    return;
  }
  while (live) {
    let frame;
    try {
      frame = await camera.frame();
    } catch {
      if (!camera.running) break; // turned off between two frames
      await new Promise((r) => setTimeout(r, 100)); // no picture yet
      continue;
    }
    if ($('preview').src) URL.revokeObjectURL($('preview').src);
    $('preview').src = URL.createObjectURL(frame);
    await classify(frame);
    await new Promise((r) => requestAnimationFrame(r));
  }
});

function renderInfluencers(list, root) {
  root.replaceChildren(
    ...list.map((p) => {
      const hit = thumbOf(p.id);
      const forget = el('button', { type: 'button', textContent: 'Forget', 'aria-label': `forget ${p.name}` });
      forget.addEventListener('click', () => forgetPhoto(p));
      return el(
        'li',
        {},
        hit ? el('img', { src: hit.img.thumb, alt: p.name, width: 72, height: 72 }) : el('span', { className: 'gone' }, '(removed)'),
        el('span', { className: 'label' }, p.name.split('/').at(-1), el('small', {}, `${p.class} · ${p.influence > 0 ? '+' : ''}${p.influence.toExponential(1)}`)),
        forget,
      );
    }),
  );
  if (list.length === 0) root.append(el('li', { className: 'help' }, 'none'));
}

async function explain() {
  $('explain').disabled = true;
  try {
    const why = JSON.parse(await enqueue(() => trainer.explain(4)));
    $('why-class').textContent = why.class;
    renderInfluencers(why.proponents, $('proponents'));
    renderInfluencers(why.opponents, $('opponents'));
    $('why').hidden = false;
  } catch (e) {
    $('why').hidden = false;
    $('why-class').textContent = `… (${message(e)})`;
    $('proponents').replaceChildren();
    $('opponents').replaceChildren();
  }
  $('explain').disabled = false;
}
$('explain').addEventListener('click', explain);

async function forgetPhoto(p) {
  try {
    const t0 = performance.now();
    const r = JSON.parse(await enqueue(() => trainer.forget(p.id)));
    const hit = thumbOf(p.id);
    if (hit) removePhoto(hit.cls, hit.img);
    setTrainState('done', `Forgot ${r.forgot} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.iterations} CG iterations on its share of the gradient, from the trained model${r.recycled ? `, deflated with ${r.recycled} directions kept from training` : ''}): the model is now the one trained without it, as accurately as it was trained.`);
    markDirty();
    if (state.lastPhoto) {
      await classify(state.lastPhoto);
      await explain();
    }
  } catch (e) {
    setTrainState('error', `Forget failed: ${message(e)}`);
  }
}

// ---------------------------------------------------------------- model and project files

function download(blob, name) {
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

$('export-model').addEventListener('click', async () => {
  try {
    const bytes = await enqueue(() => trainer.exportModel());
    download(new Blob([bytes], { type: 'application/octet-stream' }), 'model.lqf');
    setStatus($('save-status'), `Exported model.lqf (${megabytes(bytes.length)}).`);
  } catch (e) {
    setStatus($('save-status'), `Export failed: ${message(e)}`, 'error');
  }
});

/// Call `load(file)` with the file chosen in a single-file input (then clear it); errors shown.
function onFileChosen(input, load) {
  input.addEventListener('change', async () => {
    const f = input.files[0];
    input.value = '';
    if (!f) return;
    try {
      await load(f);
    } catch (err) {
      setStatus($('save-status'), `Could not import ${f.name}: ${message(err)}`, 'error');
    }
  });
}

onFileChosen($('import-model'), async (f) => {
  const bytes = new Uint8Array(await f.arrayBuffer());
  const info = JSON.parse(await enqueue(() => trainer.importModel(bytes)));
  state.modelClasses = info.classes;
  $('export-model').disabled = false;
  setStatus($('save-status'), `Imported ${f.name}: ${info.method}, depth ${info.depth}, classes ${info.classes.join(', ')}.`);
  setTrainState('done', `Model imported from ${f.name}.`);
  if (state.lastPhoto) classify(state.lastPhoto);
});

$('export-project').addEventListener('click', async () => {
  const files = [];
  for (const c of state.classes) for (const i of c.images) files.push({ path: `${c.name}/${i.name}`, bytes: new Uint8Array(await i.blob.arrayBuffer()) });
  if (files.length === 0) {
    setStatus($('save-status'), 'Nothing to export yet: add some photos.', 'error');
    return;
  }
  download(writeZip(files), 'lqf-project.zip');
  state.dirty = false;
  setStatus($('save-status'), `Exported ${files.length} photos in ${state.classes.length} classes.`);
});

onFileChosen($('import-project'), async (f) => {
  const entries = await readZip(await f.arrayBuffer());
  const files = entries.map(({ path, bytes }) => ({ path, file: new File([bytes], path.split('/').at(-1)) }));
  await addByFolder(files);
  setStatus($('save-status'), `Imported ${f.name}.`);
});

// ---------------------------------------------------------------- GPU panel

function wireGpuPanel() {
  $('selftest').disabled = false;
  $('bench').disabled = false;
  $('selftest').addEventListener('click', async () => {
    const out = $('selftest-result');
    $('selftest').disabled = true;
    setStatus(out, 'running…');
    try {
      setStatus(out, await enqueue(() => gpu.selfTest()), 'ok');
    } catch (e) {
      setStatus(out, `FAILED: ${message(e)}`, 'error');
    }
    $('selftest').disabled = false;
  });
  $('bench').addEventListener('click', async () => {
    const status = $('bench-status');
    $('bench').disabled = true;
    setStatus(status, 'measuring…');
    try {
      const figures = JSON.parse(await enqueue(() => gpu.bench(3)));
      $('bench-table')
        .querySelector('tbody')
        .replaceChildren(...figures.map((f) => el('tr', {}, ...[f.name, f.ms.toFixed(2), f.gflops.toFixed(2)].map((v) => el('td', { textContent: v })))));
      $('bench-table').hidden = false;
      setStatus(status, '');
    } catch (e) {
      setStatus(status, `failed: ${message(e)}`, 'error');
    }
    $('bench').disabled = false;
  });
  $('imagenet-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try {
      const top = JSON.parse(await enqueue(async () => gpu.imagenet(new Uint8Array(await f.arrayBuffer()), f.name)));
      $('imagenet-top').replaceChildren(...top.map((t) => el('li', { textContent: `${t.label} — ${(100 * t.score).toFixed(1)}%` })));
    } catch (err) {
      $('imagenet-top').replaceChildren(el('li', { className: 'error', textContent: message(err) }));
    }
  });
}

// ---------------------------------------------------------------- start

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
}

async function fetchWeights() {
  const res = await fetch(`weights/${ARCH}.safetensors`);
  if (!res.ok) throw new Error(`weights/${ARCH}.safetensors: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/// No WebGPU: the same page on the CPU in wasm, probe only, with a clear notice.
async function startOnCpu(why) {
  console.warn(`no WebGPU: ${why}`);
  notice(`This browser offers no WebGPU, so this page runs on the CPU in WebAssembly instead: much slower, and it trains the linear probe only. LQF fine-tuning and explanations need WebGPU: Chrome or Edge 113+, Safari 26+, or Chromium with --enable-unsafe-webgpu.`);
  $('backend').textContent = 'CPU (loading…)';
  trainer = CpuTrainer.load(ARCH, await fetchWeights());
  $('backend').textContent = trainer.adapter;
  $('method').value = 'probe';
  $('method').querySelector('option[value=lqf]').disabled = true;
  $('depth').disabled = true;
  $('explain').hidden = true;
  document.querySelector('.gpu').hidden = true;
}

async function main() {
  drawLoss();
  renderClasses();
  const wasm = await init();
  // For the stress test (tests/page/stress.mjs) and curious users: what the page holds.
  window.lqfMemory = () => ({
    wasmBytes: wasm.memory.buffer.byteLength,
    featureBytes: trainer ? trainer.featureBytes : 0,
    photos: state.classes.reduce((n, c) => n + c.images.length, 0),
    jsHeapBytes: performance.memory ? performance.memory.usedJSHeapSize : null,
  });
  setTrainState('idle', 'Loading the pretrained network…');
  try {
    try {
      gpu = await WebGpu.open();
    } catch (e) {
      await startOnCpu(message(e));
    }
    if (gpu) {
      $('backend').textContent = gpu.adapter;
      wireGpuPanel();
      gpu.loadBackbone(ARCH, await fetchWeights());
      trainer = gpu.trainer($('method').value === 'probe' ? 'probe' : $('depth').value);
    }
  } catch (e) {
    setTrainState('error', `Could not load the network: ${message(e)}`);
    return;
  }
  setTrainState('idle', 'Not trained yet.');
  renderClasses();
  document.body.dataset.ready = 'true';
}

main();
