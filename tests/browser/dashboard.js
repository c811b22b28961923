#!/usr/bin/env node
// The dashboard, tested for real (README, "The dashboard"): real daemons
// from the build tree, maps run with the real CLI, and the page the
// scheduler serves driven in Debian's headless chromium through
// playwright-core (web/'s lockfile).  Checks what a user looks for:
//
//  - a map with a failing item shows up while it runs, its progress moves
//    to done without a reload (on the execution's page: WatchExecution),
//    and the failed item is listed with its error and attempts;
//  - opened as `troupe up` prints it (http://ADDR/#token=T), the page
//    takes the token without asking and drops it from the address;
//  - an actor map's progress moves to done on the overview (its timer),
//    with the worker (slots, label) and the replicas (the pids `troupe
//    actors` reports, items served);
//  - on a guarded listener (API on TCP with a token) the page asks for
//    the token, asks again for a wrong one, shows the data after the right
//    one, and keeps it for the tab across a reload.
//
//   TROUPE_BIN_DIR=build TROUPE_SOURCE_DIR=. node tests/browser/dashboard.js
//
// Exit 0 when all pass, 1 on a failure, 77 (skip) when chromium or
// web/node_modules is missing, unless TROUPE_TEST_NO_SKIP=1 (CI), where
// that is a failure.  On a failure the page's screenshot and the daemons'
// logs are kept; the path is printed.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { Cluster, findBrowser, launch } = require('./cluster');

const bin = process.env.TROUPE_BIN_DIR && path.resolve(process.env.TROUPE_BIN_DIR);
const src = path.resolve(process.env.TROUPE_SOURCE_DIR || path.join(__dirname, '../..'));
const WAIT = 90000; // any single wait; CI runs this under ASan with -j2

let passed = 0;
let failed = 0;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// Waits until fn(arg) is true in the page; on a timeout says what it
// waited for and what the page showed.
async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT, polling: 100 });
  } catch (e) {
    const body = await page.evaluate(() => document.body.innerText).catch(() => '?');
    throw new Error(`timed out waiting for ${what}\n--- the page showed ---\n${body.slice(0, 3000)}`);
  }
}

async function step(name, fn) {
  process.stdout.write(`[ RUN      ] ${name}\n`);
  try {
    await fn();
    passed++;
    process.stdout.write(`[       OK ] ${name}\n`);
  } catch (e) {
    failed++;
    process.stdout.write(`[  FAILED  ] ${name}\n${e.stack || e}\n`);
    e.printed = true;
    throw e;
  }
}

const rowSel = (id) => `tr.exec-row[data-id="${id}"]`;

// The execution's row on the overview, as a user reads it.
const rowIs = ([sel, phase, doneText, pct]) => {
  const tr = document.querySelector(sel);
  if (!tr) return false;
  const bar = tr.querySelector('[role=progressbar]');
  return tr.dataset.phase === phase && tr.querySelector('.done-count').textContent.trim() === doneText &&
    bar && bar.getAttribute('aria-valuenow') === pct;
};

async function localCluster(chromium, work) {
  const c = new Cluster({ bin, name: 'local' });
  const gate1 = path.join(c.dir, 'gate1');
  const gate2 = path.join(c.dir, 'gate2');
  let ctx;
  let page;
  try {
    await c.start({ workers: [{ name: 'web-w1', slots: 4, labels: ['zone=test'] }] });
    ctx = await launch(chromium, path.join(work, 'profile-local'));
    page = await ctx.newPage();
    page.on('pageerror', (e) => process.stdout.write(`page error: ${e}\n`));
    // As `troupe up` prints it: the token in the address's fragment.
    await page.goto(`${c.url}#token=${c.token}`);

    await step('the worker is listed with its slots and label', async () => {
      await until(page, 'worker web-w1 in the workers table', () => {
        const tr = document.querySelector('tr.worker-row[data-name="web-w1"]');
        return tr && / 4 slots/.test(tr.innerText) && /zone=test/.test(tr.innerText) &&
          /ready/.test(tr.innerText);
      });
      check(!(await page.evaluate(() => document.querySelector('#token-dialog').open)),
        'no token prompt when the address carries the token');
      check(!(await page.evaluate(() => location.href)).includes(c.token), 'the token left the address bar');
    });

    // Items wait for gate1, so the page sees the map at 0 % first.
    const failing = c.map(['1', '2', '3', '4', '5', '6'], ['--cmd',
      `while [ ! -e ${gate1} ]; do sleep 0.05; done; ` +
      'if [ {} = 3 ]; then echo "item three is broken" >&2; exit 3; fi; echo out-{}',
      '--concurrency', '2', '--retries', '1', '--min-success-ratio', '0.5', '--name', 'web-failing']);

    await step('a running map shows on the overview at 0 %', async () => {
      await until(page, `execution ${failing} running at 0 / 6`, rowIs,
        [rowSel(failing), 'PHASE_RUNNING', '0 / 6', '0']);
    });

    await step("the execution's page follows it to done without a reload", async () => {
      await page.click(`${rowSel(failing)} td.cmd`);
      await until(page, 'the execution page at 0 / 6', (id) => {
        const v = document.querySelector('#execution-view');
        const d = document.querySelector('#exec-summary .done-count');
        return !v.hidden && location.hash === `#/exec/${id}` && d && d.textContent.startsWith('0 / 6');
      }, failing);
      const loads = await page.evaluate(() => performance.getEntriesByType('navigation').length);
      fs.writeFileSync(gate1, '');
      await until(page, 'the execution page at 6 / 6, succeeded, 100 %, 1 failed', () => {
        const d = document.querySelector('#exec-summary .done-count');
        const bar = document.querySelector('#exec-summary [role=progressbar]');
        return d && d.textContent.startsWith('6 / 6') && bar.getAttribute('aria-valuenow') === '100' &&
          /succeeded/.test(document.querySelector('#exec-title').innerText) &&
          document.querySelector('#exec-summary .failed-count').textContent === '1';
      });
      check(await page.evaluate(() => performance.getEntriesByType('navigation').length) === loads,
        'the page was not reloaded');
    });

    await step('the failed item shows with its error and attempts', async () => {
      await page.selectOption('#state-filter', 'ITEM_FAILED');
      await until(page, "item 2's error in the failed items", () => {
        const rows = [...document.querySelectorAll('#items tr.item-row')];
        return rows.length === 1 && rows[0].dataset.index === '2' && rows[0].dataset.state === 'ITEM_FAILED' &&
          /item three is broken/.test(rows[0].querySelector('.item-error').textContent) &&
          rows[0].cells[2].textContent.trim() === '2' && rows[0].cells[3].textContent.trim() === '3';
      });
      await page.click('#items tr.item-row[data-index="2"]');
      await until(page, "the item's panel with its error", () => {
        const p = document.querySelector('#item-detail');
        return !p.hidden && /Item 2/.test(p.innerText) && /item three is broken/.test(p.innerText);
      });
      // Per-item logs, once the scheduler has GetLogs (proto/api.proto).
      if (/rpc GetLogs\(/.test(fs.readFileSync(path.join(src, 'proto/api.proto'), 'utf8'))) {
        await until(page, "the item's stderr of both attempts in its panel", () => {
          const l = document.querySelector('#item-logs');
          return l && /attempt 1[^]*item three is broken[^]*attempt 2[^]*item three is broken/.test(l.textContent);
        });
      }
      await page.selectOption('#state-filter', 'ITEM_SUCCEEDED');
      await until(page, 'the five succeeded items with their outputs', () => {
        const rows = [...document.querySelectorAll('#items tr.item-row')];
        return rows.length === 5 && rows[0].querySelector('.item-output').textContent === 'out-1';
      });
    });

    await step('back on the overview the map is done, 6 / 6, 1 failed', async () => {
      await page.click('a[href="#/"]');
      await until(page, `execution ${failing} succeeded at 6 / 6`, rowIs,
        [rowSel(failing), 'PHASE_SUCCEEDED', '6 / 6', '100']);
      check(await page.textContent(`${rowSel(failing)} .failed-count`) === '1', 'the row counts 1 failed item');
    });

    // An actor map: 2 replicas, each item waits for gate2.
    const actor = c.map(['1', '2', '3', '4'], ['--cmd',
      `while read x; do while [ ! -e ${gate2} ]; do sleep 0.05; done; echo a-$x; done`,
      '--replicas', '2', '--ttl', '300', '--name', 'web-actor']);

    await step('the actor map shows at 0 % with its replicas', async () => {
      await until(page, `execution ${actor} running at 0 / 4`, rowIs,
        [rowSel(actor), 'PHASE_RUNNING', '0 / 4', '0']);
      let pids = [];
      await c.until(() => {
        const r = c.cli(['actors', '--json'], { check: false });
        pids = (r.stdout.match(/"pid"\s*:\s*(\d+)/g) || []).map((m) => m.replace(/\D/g, '')).filter((p) => p !== '0');
        return pids.length > 0;
      }, WAIT, 'troupe actors to report a replica pid');
      await until(page, `a replica with pid ${pids.join(' or ')}`, (want) => {
        const cells = [...document.querySelectorAll('#actors tr.replica-row td:first-child')];
        return cells.some((td) => want.includes(td.textContent.trim()));
      }, pids);
    });

    await step('the overview follows the actor map to done', async () => {
      fs.writeFileSync(gate2, '');
      await until(page, `execution ${actor} succeeded at 4 / 4`, rowIs,
        [rowSel(actor), 'PHASE_SUCCEEDED', '4 / 4', '100']);
      await until(page, 'replicas idle on web-w1 having served the 4 items, with TTL left', () => {
        const rows = [...document.querySelectorAll('#actors tr.replica-row')];
        const served = rows.reduce((n, tr) => n + Number(tr.cells[3].textContent), 0);
        return rows.length > 0 && served === 4 && rows.every((tr) => tr.cells[1].textContent === 'web-w1' &&
          tr.cells[2].textContent === 'idle' && /s$/.test(tr.cells[4].textContent));
      });
    });
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(work, 'local-failure.png'), fullPage: true }).catch(() => {});
    process.stdout.write(c.logs() + '\n');
    throw e;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    // After a failure items may still wait on a gate: let them end, so the
    // workers drain at once rather than at their drain timeout.
    for (const g of [gate1, gate2]) fs.writeFileSync(g, '');
    const bad = await c.stop();
    if (bad.length) {
      failed++;
      process.stdout.write(`[  FAILED  ] daemons of the local cluster: ${bad.join('; ')}\n${c.logs()}\n`);
    }
  }
  c.remove();
}

async function guardedCluster(chromium, work) {
  const c = new Cluster({ bin, guarded: true, name: 'guarded' });
  let ctx;
  let page;
  try {
    await c.start({ workers: [{ name: 'web-g1', slots: 2 }] });
    const id = c.map(['a'], ['--cmd', 'echo guarded-{}', '--name', 'web-guarded']);
    ctx = await launch(chromium, path.join(work, 'profile-guarded'));
    page = await ctx.newPage();
    await page.goto(c.url);

    await step('a guarded listener asks for the token, again for a wrong one', async () => {
      await until(page, 'the token prompt', () => document.querySelector('#token-dialog').open);
      check(await page.locator('tr.worker-row').count() === 0, 'no worker is shown before the token');
      await page.fill('#token-input', 'not-the-token');
      await page.click('#token-submit');
      await until(page, 'the token prompt a second time', () => {
        const d = document.querySelector('#token-dialog');
        return d.open && d.dataset.asks === '2';
      });
    });

    await step('the data shows once the token is entered', async () => {
      await page.fill('#token-input', c.token);
      await page.click('#token-submit');
      await until(page, 'worker web-g1 and the execution', (eid) =>
        !document.querySelector('#token-dialog').open &&
        !!document.querySelector('tr.worker-row[data-name="web-g1"]') &&
        !!document.querySelector(`tr.exec-row[data-id="${eid}"]`), id);
    });

    await step('the token is kept for the tab across a reload', async () => {
      await page.reload();
      await until(page, 'the worker, with no prompt', () =>
        !!document.querySelector('tr.worker-row[data-name="web-g1"]'));
      check(!(await page.evaluate(() => document.querySelector('#token-dialog').open)), 'no prompt after a reload');
    });
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(work, 'guarded-failure.png'), fullPage: true }).catch(() => {});
    process.stdout.write(c.logs() + '\n');
    throw e;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    const bad = await c.stop();
    if (bad.length) {
      failed++;
      process.stdout.write(`[  FAILED  ] daemons of the guarded cluster: ${bad.join('; ')}\n${c.logs()}\n`);
    }
  }
  c.remove();
}

async function main() {
  if (!bin) {
    process.stdout.write('set TROUPE_BIN_DIR to the build directory\n');
    return 2;
  }
  const b = findBrowser(src);
  if (b.missing) {
    const strict = process.env.TROUPE_TEST_NO_SKIP === '1';
    process.stdout.write(`${strict ? 'FAILED' : 'SKIPPED'}: ${b.missing}\n`);
    return strict ? 1 : 77;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-web-test-'));
  let ok = true;
  for (const part of [localCluster, guardedCluster]) {
    try {
      await part(b.chromium, work);
    } catch (e) {
      ok = false;
      if (!e.printed) {
        // Not a step's: e.g. the cluster did not start.
        failed++;
        process.stdout.write(`[  FAILED  ] ${part.name}: ${e.stack || e}\n`);
      }
    }
  }
  ok = ok && failed === 0;
  if (ok) fs.rmSync(work, { recursive: true, force: true });
  else process.stdout.write(`kept for a look: ${work}\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  process.stdout.write(`${e.stack || e}\n`);
  process.exit(1);
});
