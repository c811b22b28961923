// Real troupe daemons for the dashboard's browser test and screenshot
// script: a scheduler with its HTTP listener on a loopback port and
// workers, started from the build tree in a temporary directory, and the
// real `troupe` CLI pointed at them.  Nothing here is faked.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const http = require('http');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A port free on 127.0.0.1 now (the listener binds it a moment later).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => { req.destroy(); resolve(0); });
  });
}

class Cluster {
  // bin: the build directory; guarded: the API on TCP with a token (the
  // HTTP listener's too).  this.token is the HTTP listener's token.
  constructor({ bin, guarded = false, name = 'cluster' }) {
    this.bin = bin;
    this.guarded = guarded;
    this.name = name;
    this.procs = [];
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `troupe-web-${name}-`));
    this.env = { ...process.env, TROUPE_HOME: this.dir };
    delete this.env.TROUPE_ADDR;
    delete this.env.TROUPE_TOKEN;
    delete this.env.TROUPE_TOKEN_FILE;
    delete this.env.TROUPE_PROJECT;
  }

  spawnDaemon(name, argv) {
    const log = path.join(this.dir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    const child = spawn(argv[0], argv.slice(1), { env: this.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const p = { name, child, log, exit: null };
    child.on('exit', (code, signal) => { p.exit = { code, signal }; });
    this.procs.push(p);
    return p;
  }

  async start({ workers = [{ name: 'web-w1', slots: 4, labels: ['zone=test'] }] } = {}) {
    this.httpPort = await freePort();
    this.url = `http://127.0.0.1:${this.httpPort}/`;
    const args = [path.join(this.bin, 'daemon/troupe-scheduler'), '--home', this.dir,
      '--http-listen', `127.0.0.1:${this.httpPort}`];
    // The HTTP listener always wants a token: the API's when the API is
    // guarded (on TCP), else one for HTTP alone, as `troupe up` does.
    this.token = require('crypto').randomBytes(16).toString('hex');
    this.tokenFile = path.join(this.dir, 'token');
    fs.writeFileSync(this.tokenFile, this.token + '\n', { mode: 0o600 });
    if (this.guarded) {
      const apiPort = await freePort();
      this.env.TROUPE_ADDR = `tcp://127.0.0.1:${apiPort}`;
      this.env.TROUPE_TOKEN = this.token;
      args.push('--listen', this.env.TROUPE_ADDR, '--token-file', this.tokenFile);
    } else {
      args.push('--http-token-file', this.tokenFile);
    }
    this.sched = this.spawnDaemon('scheduler', args);
    await this.until(async () => (await get(this.url)) === 200, 60000,
      `the scheduler's HTTP listener to answer at ${this.url}`, this.sched);
    for (const w of workers) {
      const wargs = [path.join(this.bin, 'daemon/troupe-worker'), '--home', path.join(this.dir, w.name),
        '--scheduler', `ipc://${this.dir}/worker.sock`, '--name', w.name, '--slots', String(w.slots)];
      for (const l of w.labels || []) wargs.push('--label', l);
      if (process.getuid && process.getuid() === 0) wargs.push('--allow-root');
      fs.mkdirSync(path.join(this.dir, w.name), { mode: 0o700 });
      this.spawnDaemon(w.name, wargs);
    }
    await this.until(() => {
      const r = this.cli(['workers', '--json'], { check: false });
      return r.status === 0 && workers.every((w) => r.stdout.includes(`"${w.name}"`));
    }, 60000, 'the workers to register');
  }

  // Runs the real CLI; returns {status, stdout, stderr}.  check: throw
  // unless it exits 0.
  cli(args, { input, check = true } = {}) {
    const r = spawnSync(path.join(this.bin, 'client/troupe'), args, {
      env: this.env, input, encoding: 'utf8', timeout: 120000,
    });
    if (check && r.status !== 0) {
      throw new Error(`troupe ${args.join(' ')} exited ${r.status}: ${r.stderr || r.error}`);
    }
    return r;
  }

  // Starts a map in the background (--detach) and returns its id.
  map(items, args) {
    const r = this.cli(['map', '--detach', ...args], { input: items.join('\n') + '\n' });
    const id = r.stdout.trim().split(/\s+/).pop();
    if (!id) throw new Error(`troupe map --detach printed no id: ${r.stdout}`);
    return id;
  }

  // Polls fn until it is true, at most ms; a daemon's death ends it early.
  async until(fn, ms, what, proc) {
    const end = Date.now() + ms;
    for (;;) {
      if (await fn()) return;
      for (const p of this.procs) {
        if (p.exit) throw new Error(`${p.name} exited (${JSON.stringify(p.exit)}) while waiting for ${what}\n${this.tail(p)}`);
      }
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(200);
    }
  }

  tail(p, n = 40) {
    try {
      return `----- ${p.name} (${p.log}) -----\n` +
        fs.readFileSync(p.log, 'utf8').split('\n').slice(-n).join('\n');
    } catch (e) { return ''; }
  }

  logs() {
    return this.procs.map((p) => this.tail(p)).join('\n');
  }

  // SIGTERM to the workers, then the scheduler; returns what went wrong
  // (a daemon that died early, or did not exit 0 within 45 s: a worker
  // lets running items finish for up to 30 s), as text.
  async stop() {
    const bad = [];
    const order = [...this.procs.filter((p) => p !== this.sched), ...(this.sched ? [this.sched] : [])];
    for (const p of order) {
      if (p.exit) {
        bad.push(`${p.name} had died before the end (${JSON.stringify(p.exit)})`);
        continue;
      }
      p.child.kill('SIGTERM');
      const end = Date.now() + 45000;
      while (!p.exit && Date.now() < end) await sleep(100);
      if (!p.exit) {
        p.child.kill('SIGKILL');
        bad.push(`${p.name} did not exit within 45 s of SIGTERM`);
      } else if (p.exit.code !== 0) {
        bad.push(`${p.name} exited ${JSON.stringify(p.exit)} after SIGTERM`);
      }
    }
    return bad;
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// playwright-core from web/'s lockfile, and Debian's chromium: returns
// {chromium} or a reason they are missing.
function findBrowser(srcDir) {
  const mod = path.join(srcDir, 'web/node_modules/playwright-core');
  if (!fs.existsSync(mod)) return { missing: `no ${mod}: run \`npm ci\` in ${path.join(srcDir, 'web')}` };
  if (!fs.existsSync('/usr/bin/chromium')) return { missing: 'no /usr/bin/chromium: apt-get install chromium' };
  return { chromium: require(mod).chromium };
}

async function launch(chromium, userDataDir) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

module.exports = { Cluster, findBrowser, launch, sleep };
