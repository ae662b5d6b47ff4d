// The page end to end, as a person would use it, through the stable data-testid hooks: create
// three classes, upload the bundled sample photos, train LQF, predict, explain, export the model,
// import it again and predict the same. Screenshots go to $OUT. Run by scripts/page_e2e.sh.
import { chromium } from 'playwright-core';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const url = process.env.PAGE_URL ?? 'http://127.0.0.1:8080/';
const out = process.env.OUT ?? 'target/page-e2e';
const samples = 'web/samples/eurosat';
const classes = ['Forest', 'Highway', 'SeaLake'];
const executablePath = process.env.CHROMIUM ?? ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find(existsSync);

function check(cond, msg) {
  if (!cond) throw new Error(`FAILED: ${msg}`);
}

const browser = await chromium.launch({
  executablePath,
  // No network beyond localhost here: keep Chromium from dialling out.
  // A fake camera (a test pattern) for the webcam burst.
  args: ['--enable-unsafe-webgpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1300 }, acceptDownloads: true });
  page.on('pageerror', (e) => { errors.push(String(e)); console.log('page error:', String(e)); });
  page.on('console', (m) => ['error', 'warning'].includes(m.type()) && console.log(`console ${m.type()}:`, m.text()));
  // Leaving with unsaved work asks first; the test accepts.
  page.on('dialog', (d) => d.accept());
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === 'true' || document.querySelector('[data-testid=train-status]').dataset.state === 'error', null, { timeout: 180_000 });
  const backend = await page.textContent('[data-testid=backend]');
  console.log(`backend: ${backend}`);
  check(await page.getAttribute('[data-testid=train-status]', 'data-state') !== 'error', `page did not start: ${await page.textContent('[data-testid=train-status]')}`);

  // Classes and photos.
  for (const cls of classes) {
    await page.fill('[data-testid=new-class-name]', cls);
    await page.click('[data-testid=add-class]');
    const card = page.locator(`[data-testid=class-card][data-class="${cls}"]`);
    await card.waitFor();
    const dir = join(samples, 'train', cls);
    const files = readdirSync(dir).map((f) => join(dir, f));
    await card.locator('input[type=file][data-testid=class-upload]').setInputFiles(files);
    await page.waitForFunction(([c, n]) => document.querySelector(`[data-testid=class-card][data-class="${c}"] [data-testid=class-count]`)?.textContent === String(n), [cls, files.length], { timeout: 120_000 });
  }
  // A class with a typo, renamed, then deleted: the cards follow.
  await page.fill('[data-testid=new-class-name]', 'Tpyo');
  await page.click('[data-testid=add-class]');
  await page.locator('[data-testid=class-card][data-class="Tpyo"] .class-name').fill('Typo');
  await page.locator('[data-testid=class-card][data-class="Tpyo"] .class-name').dispatchEvent('change');
  await page.locator('[data-testid=class-card][data-class="Typo"]').waitFor();
  // Hold the record button for a second: a burst of camera frames lands in the class.
  const record = page.locator('[data-testid=class-card][data-class="Typo"] .record');
  await record.dispatchEvent('pointerdown');
  await page.waitForTimeout(1500);
  await record.dispatchEvent('pointerup');
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=class-card][data-class="Typo"] [data-testid=class-count]')?.textContent) > 0, null, { timeout: 60_000 });
  console.log(`webcam burst: ${await page.textContent('[data-testid=class-card][data-class="Typo"] [data-testid=class-count]')} frames`);
  await page.click('[data-testid=class-card][data-class="Typo"] button[aria-label="delete class Typo"]');
  check((await page.locator('[data-testid=class-card]').count()) === classes.length, 'the deleted class is gone');

  // Train: LQF on the last block (quick on a software GPU), fixed λ, 10 CG iterations (the
  // solve is ~12 s an iteration on SwiftShader; the fit is 100% either way).
  await page.selectOption('#depth', '1');
  await page.click('summary');
  await page.fill('#weight-decay', '1e-3');
  await page.fill('#iterations', '10');
  const t0 = Date.now();
  await page.click('[data-testid=train]');
  // A line every 20 s so a slow software GPU shows where it is.
  const ticker = setInterval(async () => console.log(`  … ${await page.textContent('#phase').catch(() => '?')}: ${await page.textContent('[data-testid=train-status]').catch(() => '?')}`), 20_000);
  await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('[data-testid=train-status]').dataset.state), null, { timeout: 900_000 });
  clearInterval(ticker);
  const status = await page.textContent('[data-testid=train-status]');
  check(await page.getAttribute('[data-testid=train-status]', 'data-state') === 'done', `training: ${status}`);
  const seconds = await page.getAttribute('[data-testid=train-status]', 'data-seconds');
  console.log(`trained: ${status} (page's clock ${seconds} s, test's ${(Date.now() - t0) / 1000} s incl. features)`);

  // Predict one test photo of each class; the Forest one is kept for the round trip.
  async function predict(file) {
    await page.evaluate(() => (document.querySelector('[data-testid=prediction]').dataset.class = ''));
    await page.setInputFiles('input[type=file][data-testid=predict-upload]', file);
    await page.waitForFunction(() => document.querySelector('[data-testid=prediction]').dataset.class !== '', null, { timeout: 120_000 });
    const cls = await page.getAttribute('[data-testid=prediction]', 'data-class');
    const scores = await page.$$eval('#scores li', (lis) => lis.map((li) => ({ class: li.dataset.class, score: Number(li.querySelector('small').textContent) })));
    return { cls, scores };
  }
  let correct = 0;
  for (const cls of classes) {
    const dir = join(samples, 'test', cls);
    const file = join(dir, readdirSync(dir).sort()[0]);
    const p = await predict(file);
    console.log(`${file}: ${p.cls}`);
    correct += p.cls === cls;
  }
  check(correct >= 2, `${correct}/3 test photos right`);
  const probe = join(samples, 'test/Forest/Forest_1154.jpg');
  const first = await predict(probe);
  await page.screenshot({ path: join(out, 'trained.png'), fullPage: true });

  // Explain it: thumbnails of the training photos that pushed each way.
  // One CG solve (up to 20 iterations) and a gradient per training photo: minutes on SwiftShader,
  // as long as training's solve, so it gets training's budget.
  const tExplain = Date.now();
  await page.click('#explain');
  await page.waitForSelector('#why:not([hidden]) #proponents li img', { timeout: 900_000 });
  const pros = await page.$$eval('#proponents li img', (imgs) => imgs.map((i) => i.alt));
  console.log(`proponents of ${first.cls}: ${pros.join(', ')} (explained in ${(Date.now() - tExplain) / 1000} s)`);
  check(pros.length > 0, 'explained with training photos');
  await page.locator('#why').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(out, 'explained.png'), fullPage: true });

  // Export, import, predict again: the same answer.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-model]')]);
  const model = join(out, 'model.lqf');
  await download.saveAs(model);
  await page.setInputFiles('input[type=file][data-testid=import-model]', model);
  await page.waitForFunction(() => /^Imported/.test(document.querySelector('#save-status').textContent) || /Could not/.test(document.querySelector('#save-status').textContent), null, { timeout: 60_000 });
  check((await page.textContent('#save-status')).startsWith('Imported'), await page.textContent('#save-status'));
  const again = await predict(probe);
  check(again.cls === first.cls, `after import: ${again.cls}, before: ${first.cls}`);
  check(JSON.stringify(again.scores) === JSON.stringify(first.scores), `scores changed: ${JSON.stringify(first.scores)} → ${JSON.stringify(again.scores)}`);
  // Cancel a second training run: the page goes back to idle and keeps the model it had.
  await page.click('[data-testid=train]');
  await page.waitForFunction(() => document.querySelector('[data-testid=train-status]').dataset.state === 'running', null, { timeout: 60_000 });
  await page.click('#cancel');
  await page.waitForFunction(() => document.querySelector('[data-testid=train-status]').dataset.state !== 'running', null, { timeout: 300_000 });
  const cancelled = await page.textContent('[data-testid=train-status]');
  check(cancelled === 'Cancelled.', `after cancel: ${cancelled}`);
  const kept = await predict(probe);
  check(JSON.stringify(kept.scores) === JSON.stringify(first.scores), 'a cancelled run keeps the previous model');
  const kappa = Number(await page.inputValue('#kappa'));
  // The project (photos + classes) as a ZIP, for the next page.
  const [projectDownload] = await Promise.all([page.waitForEvent('download'), page.click('#export-project')]);
  const project = join(out, 'project.zip');
  await projectDownload.saveAs(project);
  writeFileSync(join(out, 'result.json'), JSON.stringify({ image: probe, class: first.cls, scores: first.scores, kappa, seconds: Number(seconds) }));

  // A browser without WebGPU: the same page on the CPU in wasm (probe only), with a notice.
  const cpuPage = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
  cpuPage.on('pageerror', (e) => { errors.push(String(e)); console.log('page error (CPU):', String(e)); });
  await cpuPage.addInitScript(() => delete Navigator.prototype.gpu);
  await cpuPage.goto(url);
  await cpuPage.waitForFunction(() => document.body.dataset.ready === 'true' || document.querySelector('[data-testid=train-status]').dataset.state === 'error', null, { timeout: 180_000 });
  const cpuBackend = await cpuPage.textContent('[data-testid=backend]');
  check(/CPU/.test(cpuBackend) && await cpuPage.isVisible('#notice'), `fallback: backend "${cpuBackend}"`);
  // Its photos come from the project file the first page exported: 3 classes of 5.
  await cpuPage.setInputFiles('#import-project', project);
  for (const cls of classes) {
    await cpuPage.waitForFunction((c) => document.querySelector(`[data-testid=class-card][data-class="${c}"] [data-testid=class-count]`)?.textContent === '5', cls, { timeout: 180_000 });
  }
  const c0 = Date.now();
  await cpuPage.click('[data-testid=train]');
  await cpuPage.waitForFunction(() => ['done', 'error'].includes(document.querySelector('[data-testid=train-status]').dataset.state), null, { timeout: 600_000 });
  const cpuStatus = await cpuPage.textContent('[data-testid=train-status]');
  check(await cpuPage.getAttribute('[data-testid=train-status]', 'data-state') === 'done', `CPU training: ${cpuStatus}`);
  await cpuPage.setInputFiles('input[type=file][data-testid=predict-upload]', join(samples, 'test/Highway/Highway_1081.jpg'));
  await cpuPage.waitForFunction(() => document.querySelector('[data-testid=prediction]').dataset.class !== '', null, { timeout: 120_000 });
  const cpuClass = await cpuPage.getAttribute('[data-testid=prediction]', 'data-class');
  console.log(`without WebGPU: ${cpuBackend}; ${cpuStatus} (${(Date.now() - c0) / 1000} s); Highway_1081 → ${cpuClass}`);
  check(cpuClass === 'Highway', `CPU probe predicted ${cpuClass}`);
  await cpuPage.screenshot({ path: join(out, 'cpu-fallback.png'), fullPage: true });

  // A phone-sized screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(out, 'phone.png'), fullPage: false });
  check(errors.length === 0, `page errors: ${errors.join('; ')}`);
  console.log(`page e2e passed; screenshots in ${out}`);
} finally {
  await browser.close();
}
