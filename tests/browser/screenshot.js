#!/usr/bin/env node
// Screenshots of the dashboard, for a person to look at: starts a real
// cluster from the build tree (2 workers), runs a few maps (one with
// failing items, one on actor replicas, one still running), and writes
// PNGs of the overview, an execution's page with a failed item open, and
// the token prompt of a guarded listener.
//
//   node tests/browser/screenshot.js BUILD_DIR [OUT_DIR]   (OUT_DIR: ./dashboard-shots)
//
// Needs web/node_modules (npm ci in web/) and /usr/bin/chromium.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { Cluster, findBrowser, launch, sleep } = require('./cluster');

async function main() {
  const bin = path.resolve(process.argv[2] || process.env.TROUPE_BIN_DIR || 'build');
  const out = path.resolve(process.argv[3] || 'dashboard-shots');
  const b = findBrowser(path.resolve(__dirname, '../..'));
  if (b.missing) throw new Error(b.missing);
  fs.mkdirSync(out, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-shots-'));
  const c = new Cluster({ bin, name: 'shots' });
  let ctx;
  try {
    await c.start({ workers: [
      { name: 'gpu-box-1', slots: 4, labels: ['zone=eu-1', 'gpu=a100'] },
      { name: 'cpu-box-2', slots: 2, labels: ['zone=eu-2'] },
    ] });
    const seq = (n) => Array.from({ length: n }, (_, i) => String(i + 1));
    c.map(seq(40), ['--cmd', 'read x; echo $((x * x))', '--name', 'squares']);
    const bad = c.map(seq(30), ['--cmd',
      'read x; if [ $((x % 7)) = 0 ]; then echo "ValueError: item $x is not a valid record" >&2; exit 2; fi; echo ok-$x',
      '--retries', '1', '--min-success-ratio', '0.5', '--name', 'parse-records']);
    ctx = await launch(b.chromium, path.join(work, 'profile'));
    const page = await ctx.newPage();
    await page.goto(`${c.url}#token=${c.token}`);
    // A long map started while the page watches, so the chart has a curve
    // and a progress bar is part way.
    await sleep(3000);
    c.map(seq(400), ['--cmd', 'read x; sleep 0.$((x % 3 + 1)); echo $x', '--concurrency', '2', '--name', 'slow-crawl']);
    await sleep(15000);
    // Replicas busy when the picture is taken (idle ones give their slots
    // up to the waiting crawl, README "Actors").
    c.map(seq(60), ['--cmd', 'while read x; do sleep 0.3; echo warm-$x; done', '--replicas', '3',
      '--ttl', '600', '--name', 'detector-warm']);
    await sleep(5000);
    await page.screenshot({ path: path.join(out, 'overview.png'), fullPage: true });

    await page.goto(`${c.url}#/exec/${bad}`);
    await page.waitForSelector('#items tr.item-row');
    await page.selectOption('#state-filter', 'ITEM_FAILED');
    await page.waitForSelector('#items tr.item-row[data-state="ITEM_FAILED"]');
    await page.click('#items tr.item-row[data-state="ITEM_FAILED"]');
    await page.waitForSelector('#item-detail:not([hidden])');
    await page.screenshot({ path: path.join(out, 'execution.png'), fullPage: true });
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    await c.stop();
    c.remove();
  }

  const g = new Cluster({ bin, guarded: true, name: 'shots-guarded' });
  try {
    await g.start({ workers: [] });
    ctx = await launch(b.chromium, path.join(work, 'profile-guarded'));
    const page = await ctx.newPage();
    await page.goto(g.url);
    await page.waitForFunction(() => document.querySelector('#token-dialog').open);
    await page.screenshot({ path: path.join(out, 'token.png') });
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    await g.stop();
    g.remove();
  }
  fs.rmSync(work, { recursive: true, force: true });
  for (const f of ['overview.png', 'execution.png', 'token.png']) process.stdout.write(path.join(out, f) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
