// Not part of CI (it takes a while on a software GPU): the page holding 2000 photos. Copies
// the bundled sample photos to 2000 files in 10 classes, uploads them through the class
// pickers, waits for every photo's features, trains the linear probe on all of them, and
// prints what the page holds (wasm memory, feature cache, JS heap) and how long each step took.
//   python3 -m http.server 8080 --bind 127.0.0.1 &   (after scripts/build_web.sh)
//   node tests/page/stress.mjs [N] [--cpu]     (--cpu: as a browser without WebGPU)
import { chromium } from 'playwright-core';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const url = process.env.PAGE_URL ?? 'http://127.0.0.1:8080/';
const total = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 2000);
const cpu = process.argv.includes('--cpu');
const samples = 'web/samples/eurosat';
const classes = readdirSync(join(samples, 'train')).sort();
const per = Math.ceil(total / classes.length);
const dir = mkdtempSync(join(tmpdir(), 'lqf-stress-'));
const files = {};
for (const cls of classes) {
  const src = ['train', 'test'].flatMap((s) => readdirSync(join(samples, s, cls)).map((f) => join(samples, s, cls, f)));
  mkdirSync(join(dir, cls));
  files[cls] = [];
  for (let i = 0; i < per; i++) {
    const dst = join(dir, cls, `${i}.jpg`);
    copyFileSync(src[i % src.length], dst);
    files[cls].push(dst);
  }
}
const executablePath = process.env.CHROMIUM ?? ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find(existsSync);
const browser = await chromium.launch({ executablePath, args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--enable-precise-memory-info'] });
const page = await browser.newPage();
page.on('pageerror', (e) => console.log('page error:', String(e)));
if (cpu) await page.addInitScript(() => delete Navigator.prototype.gpu);
await page.goto(url);
await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 180_000 });
console.log(`backend: ${await page.textContent('[data-testid=backend]')}`);
await page.selectOption('#method', 'probe');
const t0 = Date.now();
for (const cls of classes) {
  await page.fill('[data-testid=new-class-name]', cls);
  await page.click('[data-testid=add-class]');
  await page.locator(`[data-testid=class-card][data-class="${cls}"] input[data-testid=class-upload]`).setInputFiles(files[cls]);
  await page.waitForFunction(([c, n]) => document.querySelector(`[data-testid=class-card][data-class="${c}"] [data-testid=class-count]`)?.textContent === String(n), [cls, per], { timeout: 600_000 });
  console.log(`${cls}: ${per} photos added (${((Date.now() - t0) / 1000).toFixed(0)} s)`, JSON.stringify(await page.evaluate(() => window.lqfMemory())));
}
await page.click('[data-testid=train]');
await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('[data-testid=train-status]').dataset.state), null, { timeout: 3_600_000 });
console.log(`${await page.textContent('[data-testid=train-status]')} (${((Date.now() - t0) / 1000).toFixed(0)} s since the first upload)`);
console.log('holding:', JSON.stringify(await page.evaluate(() => window.lqfMemory())));
await page.setInputFiles('input[type=file][data-testid=predict-upload]', join(samples, 'test/Forest/Forest_1154.jpg'));
await page.waitForFunction(() => document.querySelector('[data-testid=prediction]').dataset.class !== '', null, { timeout: 120_000 });
console.log(`Forest_1154 → ${await page.getAttribute('[data-testid=prediction]', 'data-class')}`);
await browser.close();
