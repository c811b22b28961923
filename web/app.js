// troupe's dashboard (README, "The dashboard").
//
// It speaks the scheduler's real API: each call POSTs a troupe.Request
// envelope (proto/envelope.proto) to `api` and reads back a troupe.Reply,
// with the same methods, auth and project scoping as the CLI over nng.
// The messages are encoded by protobufjs from the .proto text the
// scheduler serves next to this file, so the page and the daemon can never
// disagree on a field number.
//
// Live updates: the overview (executions page, workers, actors, the
// items/s chart) refreshes on a timer; the execution being viewed is
// followed with WatchExecution long polls, so its progress moves as soon
// as the scheduler commits a change.  At most two calls are in flight at
// once, well under a browser's six connections per origin.
'use strict';

const REFRESH_MS = 1500;       // the overview's timer
const WATCH_TIMEOUT_MS = 20000; // one WatchExecution long poll
const EXEC_PAGE = 50;          // executions per page
const ITEM_PAGE = 100;         // items per page
const SCAN_BATCH = 500;        // items read per GetOutputs while filtering
const CHART_SPAN_MS = 10 * 60 * 1000;
const RATE_WINDOW_MS = 30 * 1000;
const TOKEN_KEY = 'troupe.token';

// gRPC codes the page acts on (envelope.proto's Code).
const OK = 0, NOT_FOUND = 5, PERMISSION_DENIED = 7, UNAUTHENTICATED = 16;

const $ = (sel) => document.querySelector(sel);

// ---------------------------------------------------------------- the API

let root = null;     // protobufjs Root holding envelope.proto and api.proto
let service = null;  // troupe.Troupe
const decodeOpts = { longs: Number, enums: String, defaults: true, arrays: true, objects: true };

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function loadProtos() {
  root = new protobuf.Root();
  for (const name of ['envelope.proto', 'api.proto']) {
    const resp = await fetch('proto/' + name);
    if (!resp.ok) throw new Error(`cannot load proto/${name}: HTTP ${resp.status}`);
    protobuf.parse(await resp.text(), root, { keepCase: true });
  }
  root.resolveAll();
  service = root.lookupService('troupe.Troupe');
}

// A token prompt in progress: every call that was refused waits on it.
let tokenWaiter = null;

function askToken(why) {
  if (!tokenWaiter) {
    tokenWaiter = new Promise((resolve) => {
      const dlg = $('#token-dialog');
      $('#token-why').textContent = why;
      $('#token-input').value = '';
      const onSubmit = (ev) => {
        const token = $('#token-input').value.trim();
        if (!token) { ev.preventDefault(); return; }
        sessionStorage.setItem(TOKEN_KEY, token);
        $('#token-form').removeEventListener('submit', onSubmit);
        tokenWaiter = null;
        resolve();
      };
      $('#token-form').addEventListener('submit', onSubmit);
      // How many times it was asked for: the browser test waits on it.
      dlg.dataset.asks = String(Number(dlg.dataset.asks || 0) + 1);
      if (!dlg.open) dlg.showModal();
    });
  }
  return tokenWaiter;
}

// Calls `method` of troupe.Troupe with the plain object `request`; returns
// the reply as a plain object.  A call refused for its token asks for one
// and tries again; any other failure throws ApiError.
async function call(method, request, project) {
  const m = service.methods[method];
  if (!m) throw new ApiError(12, `this scheduler has no method ${method}`);
  const ReqType = m.resolvedRequestType, RepType = m.resolvedResponseType;
  const Envelope = root.lookupType('troupe.Request');
  const Reply = root.lookupType('troupe.Reply');
  for (;;) {
    const env = Envelope.encode(Envelope.create({
      method,
      token: sessionStorage.getItem(TOKEN_KEY) || '',
      body: ReqType.encode(ReqType.fromObject(request || {})).finish(),
      project: project || '',
    })).finish();
    let resp;
    try {
      resp = await fetch('api', {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: env,
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(14, `scheduler unreachable (${e.message})`);
    }
    if (!resp.ok) throw new ApiError(14, `scheduler answered HTTP ${resp.status}`);
    const reply = Reply.decode(new Uint8Array(await resp.arrayBuffer()));
    if (reply.code === UNAUTHENTICATED || reply.code === PERMISSION_DENIED) {
      await askToken(reply.message || 'the scheduler wants a token');
      continue;
    }
    if (reply.code !== OK) throw new ApiError(reply.code, reply.message || `code ${reply.code}`);
    return RepType.toObject(RepType.decode(reply.body), decodeOpts);
  }
}

// ---------------------------------------------------------------- helpers

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

const utf8 = new TextDecoder('utf-8');
function text(bytes) {
  return bytes && bytes.length ? utf8.decode(bytes) : '';
}

function clip(s, n) {
  s = String(s).replace(/\s+$/, '');
  return s.length > n ? s.slice(0, n) + '…' : s;
}

function dur(ms) {
  if (!isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60); s %= 60;
  if (m < 60) return `${m} m ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

function ago(ms) {
  if (!ms) return '—';
  return dur(Math.max(0, Date.now() - ms)) + ' ago';
}

function when(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

function rateText(r) {
  if (!isFinite(r) || r <= 0) return '—';
  return r >= 10 ? `${Math.round(r)}/s` : `${r.toFixed(1)}/s`;
}

const phaseName = (p) => String(p).replace(/^PHASE_/, '').toLowerCase().replace('_', ' ');
const stateName = (s) => String(s).replace(/^(ITEM|WORKER|REPLICA)_/, '').toLowerCase();
const TERMINAL = new Set(['PHASE_SUCCEEDED', 'PHASE_FAILED', 'PHASE_ABORTED', 'PHASE_TIMED_OUT']);

function done(ex) {
  const c = ex.counts;
  return c.succeeded + c.failed + c.aborted;
}

function label(ex) {
  const s = ex.spec;
  if (s.name) return s.name;
  if (s.task) return `task ${s.task}`;
  if (s.actor) return `actor ${s.actor}`;
  return s.command || (ex.task && ex.task.command) || '';
}

// A bar of succeeded (green), failed (red), aborted (grey), running
// (striped) segments over the execution's total.
function progressBar(ex) {
  const c = ex.counts;
  const total = Math.max(ex.total, 1);
  const pct = (n) => (100 * n / total).toFixed(2);
  const whole = ex.total ? Math.floor(100 * done(ex) / ex.total) : 0;
  return `<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${whole}" title="${whole}% done">` +
    `<span class="seg ok" style="width:${pct(c.succeeded)}%"></span>` +
    `<span class="seg bad" style="width:${pct(c.failed)}%"></span>` +
    `<span class="seg gone" style="width:${pct(c.aborted)}%"></span>` +
    `<span class="seg run" style="width:${pct(c.running)}%"></span>` +
    `<span class="pct">${whole}%</span></div>`;
}

function setConn(msg) {
  const el = $('#conn');
  el.textContent = msg || '';
  el.classList.toggle('err', !!msg);
}

// ----------------------------------------------- progress, rates, the chart

// Per execution: recent (time, done) samples, for its rate and ETA.
const samples = new Map();
// The finished-item count last seen per execution, for the chart's deltas.
const lastDone = new Map();
// The chart's points: {t, rate}; the time of the previous sample.
const chart = [];
let lastTick = 0;

function noteSample(ex, now) {
  let s = samples.get(ex.id);
  if (!s) samples.set(ex.id, s = []);
  const d = done(ex);
  if (!s.length || s[s.length - 1].d !== d || now - s[s.length - 1].t > 2000) s.push({ t: now, d });
  while (s.length > 2 && now - s[1].t > RATE_WINDOW_MS) s.shift();
}

// Items per second: over its whole run once finished; else over the last
// RATE_WINDOW_MS seen by this page, or since it started while the page has
// seen too little.
function rateOf(ex) {
  const d = done(ex);
  if (TERMINAL.has(ex.phase)) {
    const span = ex.finished_ms - ex.started_ms;
    return span > 0 ? 1000 * d / span : NaN;
  }
  const s = samples.get(ex.id);
  if (s && s.length > 1 && s[s.length - 1].t - s[0].t >= 3000) {
    const a = s[0], b = s[s.length - 1];
    return 1000 * (b.d - a.d) / (b.t - a.t);
  }
  return ex.started_ms ? 1000 * d / Math.max(1, Date.now() - ex.started_ms) : NaN;
}

function etaOf(ex) {
  if (TERMINAL.has(ex.phase)) return 'done';
  const left = ex.total - done(ex);
  const r = rateOf(ex);
  if (!ex.sealed || !(r > 0)) return '—';
  return dur(1000 * left / r);
}

// Adds one chart point from every execution this tick has seen: the items
// finished since the previous tick, over the time between the two.
function chartTick(execs, now) {
  let delta = 0;
  for (const ex of execs.values()) {
    const d = done(ex);
    const before = lastDone.get(ex.id);
    if (before !== undefined) delta += Math.max(0, d - before);
    else if (lastTick && ex.created_ms >= lastTick - 1000) delta += d; // new since last tick
    lastDone.set(ex.id, d);
  }
  if (lastTick) {
    const rate = 1000 * delta / Math.max(1, now - lastTick);
    chart.push({ t: now, rate });
    while (chart.length && now - chart[0].t > CHART_SPAN_MS) chart.shift();
    $('#rate-now').textContent = rate >= 10 ? Math.round(rate) : rate.toFixed(1);
  }
  lastTick = now;
  drawChart();
}

function drawChart() {
  const cv = $('#chart');
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth || 900, h = cv.clientHeight || 150;
  if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.body);
  const ink = css.getPropertyValue('--muted') || '#666';
  const line = css.getPropertyValue('--accent') || '#2563eb';
  const padL = 44, padB = 18, padT = 8, padR = 8;
  const pw = w - padL - padR, ph = h - padT - padB;
  const max = Math.max(1, ...chart.map((p) => p.rate));
  const nice = Math.pow(10, Math.floor(Math.log10(max)));
  const top = Math.ceil(max / nice) * nice;
  const now = Date.now();
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = ink; g.strokeStyle = '#ddd'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = padT + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(padL, y + 0.5); g.lineTo(padL + pw, y + 0.5); g.stroke();
    const v = (top * i) / 4;
    g.fillText(String(Number(v.toFixed(v >= 10 ? 0 : 2))), 4, y + 4);
  }
  for (let m = 0; m <= 10; m += 2) {
    const x = padL + pw - (pw * m * 60000) / CHART_SPAN_MS;
    g.fillText(m ? `-${m} min` : 'now', Math.min(x - 12, w - 28), h - 4);
  }
  if (chart.length < 2) return;
  const xy = (p) => [padL + pw - (pw * (now - p.t)) / CHART_SPAN_MS, padT + ph - (ph * p.rate) / top];
  g.beginPath();
  chart.forEach((p, i) => { const [x, y] = xy(p); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
  g.strokeStyle = line; g.lineWidth = 2; g.stroke();
  const [x0] = xy(chart[0]), [x1] = xy(chart[chart.length - 1]);
  g.lineTo(x1, padT + ph); g.lineTo(x0, padT + ph); g.closePath();
  g.globalAlpha = 0.12; g.fillStyle = line; g.fill(); g.globalAlpha = 1;
}

// ---------------------------------------------------------------- overview

function execHref(ex) {
  const p = ex.spec.project;
  return `#/exec/${encodeURIComponent(ex.id)}` + (p && p !== 'default' ? `?project=${encodeURIComponent(p)}` : '');
}

const execPager = { tokens: [''], index: 0, next: '' };

function renderExecutions(list) {
  const rows = list.map((ex) => {
    const c = ex.counts;
    const proj = ex.spec.project && ex.spec.project !== 'default' ? `<span class="tag">${esc(ex.spec.project)}</span> ` : '';
    return `<tr class="exec-row" data-id="${esc(ex.id)}" data-phase="${esc(ex.phase)}">` +
      `<td><a href="${esc(execHref(ex))}" class="mono">${esc(ex.id)}</a></td>` +
      `<td class="cmd" title="${esc(ex.spec.command || label(ex))}">${proj}${esc(clip(label(ex), 60))}` +
      (ex.spec.name && ex.spec.command ? ` <span class="muted mono small">${esc(clip(ex.spec.command, 50))}</span>` : '') + '</td>' +
      `<td><span class="phase ${esc(ex.phase)}">${esc(phaseName(ex.phase))}</span></td>` +
      `<td class="wide">${progressBar(ex)}</td>` +
      `<td class="num done-count">${done(ex)} / ${ex.total}${ex.sealed ? '' : '+'}</td>` +
      `<td class="num failed-count${c.failed ? ' bad-text' : ''}">${c.failed}</td>` +
      `<td class="num">${rateText(rateOf(ex))}</td>` +
      `<td class="num">${esc(etaOf(ex))}</td>` +
      `<td>${esc(when(ex.created_ms))}</td></tr>`;
  });
  $('#executions tbody').innerHTML = rows.join('') ||
    '<tr><td colspan="9" class="muted">No executions yet: run <code>troupe map</code>.</td></tr>';
  $('#exec-prev').disabled = execPager.index === 0;
  $('#exec-next').disabled = !execPager.next;
  $('#exec-page').textContent = `page ${execPager.index + 1}`;
}

function renderWorkers(workers) {
  const rows = workers.map((w) => {
    const labels = Object.entries(w.labels || {}).map(([k, v]) => `<span class="tag">${esc(k)}=${esc(v)}</span>`).join(' ');
    const used = w.slots ? Math.min(100, (100 * w.running) / w.slots) : 0;
    return `<tr class="worker-row" data-name="${esc(w.name)}">` +
      `<td><b>${esc(w.name)}</b><div class="muted small">${esc(w.host)}${w.pid ? ' · pid ' + w.pid : ''}</div></td>` +
      `<td><span class="wstate ${esc(w.state)}">${esc(stateName(w.state))}</span></td>` +
      `<td><div class="bar thin"><span class="seg run solid" style="width:${used.toFixed(1)}%"></span></div>` +
      // running counts the items handed to its actor replicas ahead of
      // time too, so it can pass slots.
      `<span class="small">${w.running} running · ${w.slots} slots</span></td>` +
      `<td class="num">${w.items_done}</td>` +
      `<td>${esc(ago(w.last_seen_ms))}</td>` +
      `<td>${labels || '<span class="muted">—</span>'}</td></tr>`;
  });
  $('#workers tbody').innerHTML = rows.join('') ||
    '<tr><td colspan="6" class="muted">No worker has registered.</td></tr>';
}

function renderActors(actors) {
  const html = actors.map((a) => {
    const env = a.env;
    const reps = a.replicas.map((r) =>
      `<tr class="replica-row"><td class="num mono">${r.pid}</td><td>${esc(r.worker)}</td>` +
      `<td><span class="rstate ${esc(r.state)}">${esc(stateName(r.state))}</span></td>` +
      `<td class="num">${r.items_served}</td>` +
      `<td class="num">${r.state === 'REPLICA_IDLE' ? esc(dur(r.idle_ms_left)) : '—'}</td></tr>`).join('');
    return `<div class="actor" data-key="${esc(a.key)}">` +
      `<h3>${esc(a.key)} <small class="muted">${a.replicas.length} of ${env.replica_count} replicas · TTL ${env.ttl_seconds || 90} s` +
      `${env.project && env.project !== 'default' ? ' · project ' + esc(env.project) : ''}</small></h3>` +
      `<div class="cmd mono small" title="${esc(env.command)}">${esc(clip(env.command, 120))}</div>` +
      (reps ? `<table class="replicas"><thead><tr><th class="num">PID</th><th>Worker</th><th>State</th>` +
        `<th class="num">Items served</th><th class="num">TTL left</th></tr></thead><tbody>${reps}</tbody></table>`
        : '<p class="muted small">No replica alive.</p>') + '</div>';
  }).join('');
  $('#actors').innerHTML = html || '<p class="muted">No actor environment.</p>';
}

// All running executions (bounded), so the chart counts items finishing
// in executions that are not on the page being looked at.
async function runningExecutions() {
  const out = [];
  let token = '';
  for (let i = 0; i < 5; i++) {
    const r = await call('ListExecutions', { page_size: 200, page_token: token, phase: 'PHASE_RUNNING' });
    out.push(...r.executions);
    token = r.next_page_token;
    if (!token) break;
  }
  return out;
}

async function refreshOverview() {
  const phase = $('#phase-filter').value;
  const page = await call('ListExecutions', {
    page_size: EXEC_PAGE, page_token: execPager.tokens[execPager.index], phase,
  });
  execPager.next = page.next_page_token;
  const running = await runningExecutions();
  const seen = new Map();
  for (const ex of [...page.executions, ...running]) seen.set(ex.id, ex);
  // Those running at the previous tick and no longer: read their final
  // counts, so the chart sees the items they finished since.
  const gone = [...lastDone.keys()].filter((id) => !seen.has(id) && runningIds.has(id)).slice(0, 20);
  for (const id of gone) {
    try {
      const r = await call('GetExecution', { id }, projectOf.get(id));
      seen.set(id, r.execution);
    } catch (e) { if (e.code !== NOT_FOUND) throw e; }
  }
  runningIds = new Set(running.map((ex) => ex.id));
  // Forget what this tick did not see, so the maps stay as small as a page.
  for (const id of [...lastDone.keys()]) {
    if (!seen.has(id) && id !== view.id) { lastDone.delete(id); samples.delete(id); projectOf.delete(id); }
  }
  const now = Date.now();
  for (const ex of seen.values()) {
    noteSample(ex, now);
    projectOf.set(ex.id, ex.spec.project);
  }
  chartTick(seen, now);
  renderExecutions(page.executions);

  const [workers, actors, health] = await Promise.all([
    call('ListWorkers', {}), call('ListActors', {}), call('GetHealth', {}).catch(() => null),
  ]);
  renderWorkers(workers.workers);
  renderActors(actors.actors);
  if (health) {
    $('#health').textContent = `scheduler ${health.version} · up ${dur(health.uptime_ms)} · ` +
      `${health.workers} worker${health.workers === 1 ? '' : 's'} · ${health.active_executions} active`;
  }
}

let runningIds = new Set();
const projectOf = new Map(); // execution id -> its project, for per-id calls

// ------------------------------------------------------------ one execution

const view = {
  id: null,        // the execution shown, or null on the overview
  exec: null,      // its latest state
  gen: 0,          // bumped when the view changes: stale loops stop
  starts: [0],     // item index each page starts at (for Previous)
  page: 0,
  nextStart: 0,    // where the page after this one starts
  selected: null,  // index of the item in the detail panel
  itemsAt: 0,      // when the items were last read
};

function renderExecSummary(ex) {
  const c = ex.counts;
  const t = ex.task || {};
  $('#exec-title').innerHTML = `Execution <span class="mono">${esc(ex.id)}</span> ` +
    `<span class="phase ${esc(ex.phase)}">${esc(phaseName(ex.phase))}</span>`;
  const started = ex.started_ms ? when(ex.started_ms) : 'not yet';
  const took = ex.started_ms ? dur((ex.finished_ms || Date.now()) - ex.started_ms) : '—';
  $('#exec-summary').innerHTML =
    `<div class="big-bar">${progressBar(ex)}</div>` +
    `<dl class="facts">` +
    `<div><dt>Done</dt><dd class="done-count">${done(ex)} / ${ex.total}${ex.sealed ? '' : ' (more coming)'}</dd></div>` +
    `<div><dt>Succeeded</dt><dd>${c.succeeded}</dd></div>` +
    `<div><dt>Failed</dt><dd class="failed-count${c.failed ? ' bad-text' : ''}">${c.failed}</dd></div>` +
    `<div><dt>Running</dt><dd>${c.running}</dd></div>` +
    `<div><dt>Pending</dt><dd>${c.pending}</dd></div>` +
    `<div><dt>Aborted</dt><dd>${c.aborted}</dd></div>` +
    `<div><dt>Rate</dt><dd>${rateText(rateOf(ex))}</dd></div>` +
    `<div><dt>ETA</dt><dd>${esc(etaOf(ex))}</dd></div>` +
    `<div><dt>Started</dt><dd>${esc(started)}</dd></div>` +
    `<div><dt>Took</dt><dd>${esc(took)}</dd></div>` +
    `</dl>` +
    `<dl class="facts small">` +
    `<div class="span"><dt>Command</dt><dd class="mono">${esc(t.command || ex.spec.command)}</dd></div>` +
    (t.name ? `<div><dt>Task</dt><dd>${esc(t.name)}</dd></div>` : '') +
    (t.actor || ex.spec.actor ? `<div><dt>Actor</dt><dd>${esc(t.actor || ex.spec.actor)}</dd></div>` : '') +
    `<div><dt>Project</dt><dd>${esc(ex.spec.project || 'default')}</dd></div>` +
    `<div><dt>Retries</dt><dd>${ex.spec.retries !== undefined ? ex.spec.retries : (t.retries || 0)}</dd></div>` +
    `<div><dt>Concurrency</dt><dd>${ex.spec.concurrency || 'any'}</dd></div>` +
    (ex.error ? `<div class="span"><dt>Error</dt><dd class="bad-text">${esc(ex.error)}</dd></div>` : '') +
    `</dl>`;
}

// Reads one page of items: from the page's start, ITEM_PAGE of them, or
// with a state filter the first ITEM_PAGE in that state (GetOutputs has
// no filter, so it scans in batches).
async function loadItems(gen) {
  const ex = view.exec;
  const want = $('#state-filter').value;
  const project = ex.spec.project;
  let start = view.starts[view.page];
  const items = [];
  let scanned = 0;
  while (start < ex.total && items.length < ITEM_PAGE) {
    const r = await call('GetOutputs', { id: ex.id, start, count: want ? SCAN_BATCH : ITEM_PAGE }, project);
    if (gen !== view.gen) return;
    if (!r.items.length) break;
    for (const it of r.items) {
      if (items.length >= ITEM_PAGE) break;
      if (!want || it.state === want) items.push(it);
      start = it.index + 1;
    }
    scanned += r.items.length;
    if (!want) break;
    if (scanned > 200000) break; // a bound per page; Next goes on from here
  }
  view.nextStart = start;
  view.itemsAt = Date.now();
  renderItems(items, ex, want);
}

function renderItems(items, ex, want) {
  const rows = items.map((it) => {
    const took = it.started_ms && it.finished_ms ? dur(it.finished_ms - it.started_ms) : '—';
    const failed = it.state === 'ITEM_FAILED' || it.state === 'ITEM_ABORTED';
    const what = failed ? `<span class="bad-text item-error">${esc(clip(it.error, 200))}</span>`
      : `<span class="mono item-output">${esc(clip(text(it.output), 200))}</span>`;
    return `<tr class="item-row${view.selected === it.index ? ' selected' : ''}" data-index="${it.index}" data-state="${esc(it.state)}">` +
      `<td class="num">${it.index}</td><td><span class="istate ${esc(it.state)}">${esc(stateName(it.state))}</span></td>` +
      `<td class="num">${it.attempts}</td><td class="num">${it.attempts && (it.state === 'ITEM_FAILED' || it.state === 'ITEM_SUCCEEDED') ? it.exit_code : ''}</td>` +
      `<td>${esc(it.worker)}</td><td class="num">${took}</td><td class="wide">${what}</td></tr>`;
  });
  $('#items tbody').innerHTML = rows.join('') ||
    `<tr><td colspan="7" class="muted">No ${want ? stateName(want) + ' ' : ''}items${view.page ? ' on this page' : ''}.</td></tr>`;
  const first = view.starts[view.page];
  $('#items-page').textContent = want ? `from item ${first}, scanned to ${view.nextStart} of ${ex.total}`
    : `items ${first}–${Math.max(first, view.nextStart - 1)} of ${ex.total}`;
  $('#items-prev').disabled = view.page === 0;
  $('#items-next').disabled = view.nextStart >= ex.total;
  view.items = items;
  if (view.selected !== null) renderItemDetail(items.find((it) => it.index === view.selected));
}

// The panel of one item: its whole output or error, attempts, timings.
// A log section is added when the scheduler has a GetLogs method.
function renderItemDetail(it) {
  const el = $('#item-detail');
  if (!it) { el.hidden = true; return; }
  el.hidden = false;
  const out = text(it.output);
  el.innerHTML = `<h3>Item ${it.index} <span class="istate ${esc(it.state)}">${esc(stateName(it.state))}</span>` +
    ` <button type="button" class="close" title="Close">×</button></h3>` +
    `<dl class="facts small">` +
    `<div><dt>Attempts</dt><dd>${it.attempts}</dd></div><div><dt>Exit code</dt><dd>${it.exit_code}</dd></div>` +
    `<div><dt>Worker</dt><dd>${esc(it.worker || '—')}</dd></div>` +
    `<div><dt>Started</dt><dd>${esc(when(it.started_ms))}</dd></div>` +
    `<div><dt>Finished</dt><dd>${esc(when(it.finished_ms))}</dd></div></dl>` +
    (it.error ? `<h4>Error</h4><pre class="bad-text">${esc(it.error)}</pre>` : '') +
    (out ? `<h4>Output</h4><pre>${esc(out)}</pre>` : '') +
    (service.methods.GetLogs ? `<h4>Logs <small class="muted">stderr, every attempt</small></h4>` +
      `<pre id="item-logs" class="muted">loading…</pre>` : '');
  el.querySelector('.close').onclick = () => { view.selected = null; el.hidden = true; markSelected(); };
  if (service.methods.GetLogs) {
    // Read again only when the item may have written more.
    const key = `${view.exec.id}/${it.index}/${it.attempts}/${it.state}`;
    const done = it.state !== 'ITEM_RUNNING' && it.state !== 'ITEM_PENDING';
    if (view.logs && view.logs.key === key && done) showLogs(view.logs.parts);
    else loadLogs(it, key);
  }
}

// The item's stderr, attempt by attempt (GetLogs; README, "Per-item
// logs").  A scheduler older than GetLogs has no such method: the panel
// then has no log section.
const LOG_PAGES = 20; // bound on the pages read for one item

async function loadLogs(it, key) {
  const parts = [];
  let token = '';
  try {
    for (let i = 0; i < LOG_PAGES; i++) {
      const r = await call('GetLogs', { id: view.exec.id, item: it.index, attempt: 0, page_token: token },
        view.exec.spec.project);
      for (const l of r.logs) {
        parts.push(`── attempt ${l.attempt}${l.dropped ? ` (${l.dropped} bytes dropped from the middle)` : ''} ──\n` +
          text(l.data));
      }
      token = r.next_page_token;
      if (!token) break;
    }
  } catch (e) {
    parts.push(`cannot read the logs: ${e.message}`);
  }
  view.logs = { key, parts };
  if (view.selected === it.index) showLogs(parts);
}

function showLogs(parts) {
  const el = $('#item-logs');
  if (!el) return;
  el.textContent = parts.join('\n') || 'No attempt of this item wrote to stderr.';
  el.classList.toggle('muted', !parts.length);
}

function markSelected() {
  for (const tr of document.querySelectorAll('#items tr.item-row')) {
    tr.classList.toggle('selected', Number(tr.dataset.index) === view.selected);
  }
}

// Follows the execution shown: WatchExecution returns as soon as its
// version passes the one given, or after WATCH_TIMEOUT_MS with no change.
async function watchLoop(gen) {
  let itemsTimer = null;
  while (gen === view.gen) {
    try {
      const r = await call('WatchExecution', {
        id: view.id, since_version: view.exec.version, timeout_ms: WATCH_TIMEOUT_MS,
      }, view.exec.spec.project);
      if (gen !== view.gen) return;
      view.exec = r.execution;
      noteSample(view.exec, Date.now());
      renderExecSummary(view.exec);
      setConn('');
      // Items: at most once a second, however fast the versions come.
      if (!itemsTimer) {
        itemsTimer = setTimeout(() => {
          itemsTimer = null;
          if (gen === view.gen) loadItems(gen).catch(showError);
        }, Math.max(0, 1000 - (Date.now() - view.itemsAt)));
      }
      if (TERMINAL.has(view.exec.phase)) {
        // A finished execution changes no more, and the scheduler answers
        // a watch of one at once: read its items a last time and stop.
        clearTimeout(itemsTimer);
        await loadItems(gen);
        return;
      }
    } catch (e) {
      showError(e);
      await sleep(2000);
    }
  }
}

async function openExecution(id) {
  const gen = ++view.gen;
  view.id = id;
  view.starts = [0];
  view.page = 0;
  view.selected = null;
  $('#item-detail').hidden = true;
  $('#overview-view').hidden = true;
  $('#execution-view').hidden = false;
  $('#exec-title').textContent = `Execution ${id}`;
  $('#exec-summary').textContent = 'loading…';
  $('#items tbody').innerHTML = '';
  try {
    const r = await call('GetExecution', { id }, projectOf.get(id));
    if (gen !== view.gen) return;
    view.exec = r.execution;
    renderExecSummary(view.exec);
    await loadItems(gen);
  } catch (e) {
    if (gen === view.gen) $('#exec-summary').innerHTML = `<p class="bad-text">${esc(e.message)}</p>`;
    return;
  }
  watchLoop(gen);
}

// ------------------------------------------------------------------ wiring

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function showError(e) {
  setConn(e instanceof ApiError ? e.message : `error: ${e.message}`);
  if (!(e instanceof ApiError)) console.error(e);
}

function route() {
  // #/exec/ID, or #/exec/ID?project=P for an execution outside "default"
  // (a call without a project means "default" for one execution).
  const m = location.hash.match(/^#\/exec\/([^?]+)(?:\?project=(.*))?$/);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (m[2]) projectOf.set(id, decodeURIComponent(m[2]));
    openExecution(id);
  } else {
    view.gen++;
    view.id = null;
    $('#execution-view').hidden = true;
    $('#overview-view').hidden = false;
    drawChart();
  }
}

async function overviewLoop() {
  for (;;) {
    // The chart's counts are taken on the overview and off it alike, so
    // coming back shows the minutes spent on an execution too.
    if (!document.hidden) {
      try {
        await refreshOverview();
        setConn('');
      } catch (e) {
        showError(e);
      }
    }
    await sleep(REFRESH_MS);
  }
}

function wire() {
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', drawChart);
  $('#phase-filter').addEventListener('change', () => {
    execPager.tokens = ['']; execPager.index = 0; refreshOverview().catch(showError);
  });
  $('#exec-next').addEventListener('click', () => {
    if (!execPager.next) return;
    execPager.tokens[++execPager.index] = execPager.next;
    refreshOverview().catch(showError);
  });
  $('#exec-prev').addEventListener('click', () => {
    if (execPager.index === 0) return;
    execPager.index--;
    refreshOverview().catch(showError);
  });
  $('#executions tbody').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.exec-row');
    if (tr && !ev.target.closest('a')) location.hash = tr.querySelector('a').getAttribute('href');
  });
  $('#state-filter').addEventListener('change', () => {
    view.starts = [0]; view.page = 0; loadItems(view.gen).catch(showError);
  });
  $('#items-next').addEventListener('click', () => {
    view.starts[++view.page] = view.nextStart; loadItems(view.gen).catch(showError);
  });
  $('#items-prev').addEventListener('click', () => {
    if (view.page === 0) return;
    view.page--; loadItems(view.gen).catch(showError);
  });
  $('#items tbody').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.item-row');
    if (!tr) return;
    view.selected = Number(tr.dataset.index);
    markSelected();
    renderItemDetail((view.items || []).find((it) => it.index === view.selected));
  });
  // The dialog must not be dismissed without a token: calls wait on it.
  $('#token-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
}

// `troupe up` prints the dashboard's address as http://ADDR/#token=T:
// take the token into this tab's sessionStorage and out of the address
// bar (and the history), so it is neither bookmarked nor shared by a copy.
function takeTokenFromAddress() {
  const m = location.hash.match(/^#token=([^&]*)$/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search + '#/');
}

async function main() {
  takeTokenFromAddress();
  wire();
  try {
    await loadProtos();
  } catch (e) {
    setConn(`cannot start: ${e.message}`);
    return;
  }
  route();
  overviewLoop();
}

main();
