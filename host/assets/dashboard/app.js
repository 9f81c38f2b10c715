// sandcron dashboard (O5): plain JavaScript against the host's own /v1/ API, no build
// step and no third-party code. Two views chosen by the URL hash: the jobs list (#/) and
// one job (#/jobs/NAME) with its chart and runs.
//
// Design decisions:
// - Everything from the API is untrusted text (job names, reasons, guest logs and output):
//   it only ever reaches the page through textContent / createTextNode / setAttribute,
//   never innerHTML.
// - Rows are keyed (jobs by name, runs by ledger id) and updated in place, touching a node
//   only when its text changes, so the periodic refresh neither flickers nor rebuilds the
//   DOM, and stays cheap with hundreds of jobs and thousands of runs.
// - The session is the HttpOnly cookie set by /login (same origin, sent automatically); a
//   401 from the API sends the browser back to /login.
'use strict';

(() => {
  const REFRESH_MS = 3000;
  const PAGE = 50; // runs per page of the run table
  const CHART_MAX = 500; // runs drawn in the chart
  const STATUSES = ['succeeded', 'failed', 'interrupted', 'running', 'skipped', 'missed'];

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // ---- DOM helpers -------------------------------------------------------------------

  /** Creates an element; props are attributes (plus `class`, `text` and `on*` listeners). */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? '' : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function setAttr(node, name, value) {
    const v = value === null || value === undefined ? null : String(value);
    if (v === null) {
      if (node.hasAttribute(name)) node.removeAttribute(name);
    } else if (node.getAttribute(name) !== v) {
      node.setAttribute(name, v);
    }
  }

  function setHidden(node, hidden) {
    if (node.hidden !== hidden) node.hidden = hidden;
  }

  /** Puts `rows` (in order) into `body`, moving only the nodes out of place. */
  function placeRows(body, rows) {
    let cursor = body.firstChild;
    for (const row of rows) {
      if (row === cursor) {
        cursor = cursor.nextSibling;
      } else {
        body.insertBefore(row, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  // ---- formatting --------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, '0');

  function parseTime(text) {
    if (!text) return null;
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? null : ms;
  }

  /** Local time, `YYYY-MM-DD HH:MM:SS`. */
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtSpan(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const hr = Math.floor(s / 3600); s -= hr * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${hr}h`;
    if (hr) return `${hr}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function fmtCountdown(targetMs, nowMs) {
    if (targetMs === null) return '';
    const delta = targetMs - nowMs;
    return delta <= 0 ? 'due now' : `in ${fmtSpan(delta)}`;
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms === 0) return '0';
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    return fmtSpan(ms);
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
  }

  function fmtCount(n) {
    return n === null || n === undefined ? '—' : Number(n).toLocaleString('en');
  }

  function statusClass(status) {
    return STATUSES.includes(status) ? `badge st-${status}` : 'badge';
  }

  /** A job's state in words: paused, breaker, failure streak. */
  function jobState(job) {
    const parts = [];
    if (job.paused) parts.push(job.pause_note ? `paused: ${job.pause_note}` : 'paused');
    if (job.breaker === 'open') {
      const until = parseTime(job.breaker_until);
      parts.push(until ? `breaker open until ${fmtTime(until)}` : 'breaker open');
    } else if (job.breaker === 'half-open') {
      parts.push('breaker half-open');
    }
    if (job.consecutive_failures > 0) {
      parts.push(`${job.consecutive_failures} failed in a row`);
    }
    if (job.backfill_pending > 0) parts.push(`${job.backfill_pending} backfill pending`);
    if (job.load_error) parts.push(`latest edit failed (this version keeps running): ${job.load_error}`);
    return parts.length ? parts.join(' · ') : 'active';
  }

  function stateClass(job) {
    if (job.paused || job.breaker === 'open' || job.load_error) return 'state warn';
    if (job.breaker === 'half-open' || job.consecutive_failures > 0) return 'state caution';
    return 'state ok';
  }

  function runningText(job) {
    return job.waiting > 0 ? `${job.running} (+${job.waiting} waiting)` : String(job.running);
  }

  // ---- API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  /** One API call; resolves to the JSON body, rejects with the API's error message. */
  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined || method !== 'GET') {
      // The API takes writes as JSON only, an empty one too: no other site's page can send
      // that type without the API's consent.
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, 'network', `cannot reach the host (${err.message})`);
    }
    if (response.status === 401) {
      window.location.assign('/login');
      throw new ApiError(401, 'unauthorized', 'this host requires its token: sign in');
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const code = (data && data.code) || 'http_error';
      const message = (data && data.message) || `HTTP ${response.status}`;
      throw new ApiError(response.status, code, message, data && data.details);
    }
    return data;
  }

  // ---- flash messages and connection status ------------------------------------------

  let flashTimer = null;

  function flash(text, kind) {
    const node = $('flash');
    node.className = `flash ${kind || 'ok'}`;
    node.replaceChildren(
      h('span', { 'data-testid': 'flash-text', text }),
      h('button', {
        type: 'button', class: 'link', 'aria-label': 'Dismiss',
        onclick: () => { node.hidden = true; },
      }, '×'),
    );
    node.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { node.hidden = true; }, kind === 'error' ? 15000 : 5000);
  }

  function setConn(error) {
    const node = $('conn');
    if (error) {
      setAttr(node, 'class', 'conn error');
      setText(node, `not updated: ${error.message}`);
    } else {
      setAttr(node, 'class', 'conn');
      setText(node, `updated ${fmtTime(Date.now()).slice(11)}`);
    }
  }

  // ---- actions (shared by the list and the job page) ---------------------------------

  async function act(button, label, call) {
    button.disabled = true;
    try {
      const result = await call();
      flash(label(result), 'ok');
    } catch (err) {
      if (err.status !== 401) flash(err.message, 'error');
    } finally {
      button.disabled = false;
      kick();
    }
  }

  function triggerJob(name, button) {
    return act(button, (r) => (r.status === 'queued'
      ? `${name}: queued behind the running run`
      : r.status === 'duplicate'
        ? `${name}: already triggered as run ${r.run_id}`
        : `${name}: started run ${r.run_id}`),
    () => api('POST', `/v1/jobs/${enc(name)}/trigger`, {}));
  }

  function pauseJob(name, note, button) {
    return act(button, () => `${name}: paused`,
      () => api('POST', `/v1/jobs/${enc(name)}/pause`, { note }));
  }

  function resumeJob(name, button) {
    return act(button, () => `${name}: resumed`,
      () => api('POST', `/v1/jobs/${enc(name)}/resume`));
  }

  // ---- the jobs list -----------------------------------------------------------------

  const jobRows = new Map(); // name -> row record
  let invalidSignature = '';

  function makeJobRow(name) {
    const row = { name, nextMs: null, search: '' };
    row.link = h('a', { href: `#/jobs/${enc(name)}`, 'data-testid': 'job-link', text: name });
    row.desc = h('span', { class: 'desc' });
    row.expr = h('code', { class: 'expr' });
    row.tz = h('td', { 'data-testid': 'job-timezone' });
    row.nextAt = h('span', { class: 'at' });
    row.countdown = h('span', { class: 'countdown', 'data-testid': 'countdown' });
    row.lastBadge = h('span', { 'data-testid': 'job-last' });
    row.lastReason = h('span', { class: 'reason' });
    row.state = h('span', { 'data-testid': 'job-state' });
    row.running = h('td', { class: 'num', 'data-testid': 'job-running' });
    row.trigger = h('button', {
      type: 'button', 'data-testid': 'trigger', onclick: () => triggerJob(name, row.trigger),
    }, 'Trigger');
    row.pause = h('button', {
      type: 'button',
      'data-testid': 'pause',
      onclick: () => {
        const note = window.prompt(`Pause ${name}: note (optional)`, '');
        if (note !== null) pauseJob(name, note, row.pause);
      },
    }, 'Pause');
    row.resume = h('button', {
      type: 'button', 'data-testid': 'resume', onclick: () => resumeJob(name, row.resume),
    }, 'Resume');
    row.tr = h('tr', { 'data-testid': 'job-row', 'data-job': name },
      h('th', { scope: 'row', class: 'name' }, row.link),
      h('td', { class: 'schedule' }, row.desc, ' ', row.expr),
      row.tz,
      h('td', { class: 'next' }, row.nextAt, ' ', row.countdown),
      h('td', { class: 'last' }, row.lastBadge, ' ', row.lastReason),
      h('td', {}, row.state),
      row.running,
      h('td', { class: 'actions' }, row.trigger, row.pause, row.resume));
    return row;
  }

  function updateJobRow(row, job) {
    const schedule = job.schedule || {};
    setText(row.desc, schedule.description || '—');
    setText(row.expr, schedule.expression || '');
    setText(row.tz, schedule.timezone || '—');
    row.nextMs = parseTime(job.next_fire);
    setText(row.nextAt, row.nextMs === null ? '—' : fmtTime(row.nextMs));
    setAttr(row.nextAt, 'title', job.next_fire);
    setText(row.countdown, fmtCountdown(row.nextMs, Date.now()));
    const last = job.last_run;
    if (last) {
      setText(row.lastBadge, last.outcome && last.outcome !== last.status
        ? `${last.status} (${last.outcome})` : last.status);
      setAttr(row.lastBadge, 'class', statusClass(last.status));
      setAttr(row.lastBadge, 'title', `run ${last.run_id}, ${last.trigger}, ` +
        `started ${fmtTime(parseTime(last.started_at || last.scheduled_at))}`);
      setText(row.lastReason, last.reason || '');
      setAttr(row.lastReason, 'title', last.reason || null);
    } else {
      setText(row.lastBadge, 'no runs');
      setAttr(row.lastBadge, 'class', 'badge none');
      setAttr(row.lastBadge, 'title', null);
      setText(row.lastReason, '');
    }
    const state = jobState(job);
    setText(row.state, state);
    setAttr(row.state, 'class', stateClass(job));
    setAttr(row.tr, 'data-paused', job.paused ? 'true' : 'false');
    setAttr(row.tr, 'data-breaker', job.breaker);
    setText(row.running, runningText(job));
    setHidden(row.pause, job.paused);
    setHidden(row.resume, !job.paused);
    row.search = [job.name, schedule.description, schedule.expression, schedule.timezone,
      state, last ? last.status : ''].join(' ').toLowerCase();
  }

  function applyFilter() {
    const words = $('job-filter').value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of jobRows.values()) {
      const match = words.every((w) => row.search.includes(w));
      setHidden(row.tr, !match);
      if (match) shown += 1;
    }
    const total = jobRows.size;
    setText($('jobs-count'), words.length ? `(${shown} of ${total})` : `(${total})`);
    setHidden($('jobs-empty'), shown > 0);
    setText($('jobs-empty'), total ? 'No job matches the filter.' : 'No jobs loaded.');
  }

  function renderInvalid(invalid) {
    const signature = JSON.stringify(invalid);
    if (signature === invalidSignature) return;
    invalidSignature = signature;
    const rows = invalid.map((item) => h('tr', { 'data-testid': 'invalid-row', 'data-job': item.name },
      h('th', { scope: 'row', class: 'name' }, item.name),
      h('td', {}, h('pre', { class: 'error-text', 'data-testid': 'invalid-error' }, item.error))));
    $('invalid-body').replaceChildren(...rows);
    setHidden($('invalid-section'), invalid.length === 0);
  }

  async function refreshJobs(isCurrent) {
    const data = await api('GET', '/v1/jobs');
    if (!isCurrent()) return;
    const jobs = [...data.jobs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const seen = new Set();
    const trs = [];
    for (const job of jobs) {
      let row = jobRows.get(job.name);
      if (!row) {
        row = makeJobRow(job.name);
        jobRows.set(job.name, row);
      }
      updateJobRow(row, job);
      seen.add(job.name);
      trs.push(row.tr);
    }
    for (const name of [...jobRows.keys()]) {
      if (!seen.has(name)) jobRows.delete(name);
    }
    placeRows($('jobs-body'), trs);
    applyFilter();
    renderInvalid(data.invalid || []);
  }

  // ---- one job -----------------------------------------------------------------------

  /** The job page's state; replaced whenever another job is opened. */
  let page = null;

  function newPage(name) {
    return {
      name,
      loaded: false,
      nextMs: null,
      runs: new Map(), // ledger id -> run summary
      sorted: [], // newest first
      olderCursor: null, // `next_before` for runs older than any loaded
      shown: PAGE,
      rows: new Map(), // ledger id -> { tr, detailTr, ... }
      expanded: new Set(), // ledger ids whose details are open
      chartSignature: '',
      facts: new Map(), // fact key -> dd
    };
  }

  function mergeRuns(runs) {
    for (const run of runs) page.runs.set(run.id, run);
    page.sorted = [...page.runs.values()].sort((a, b) => b.id - a.id);
  }

  /**
   * Fetches the runs that are new or may have changed since the last refresh: the newest
   * page (deep enough to cover any run still shown as running), then older pages until they
   * meet runs already known. More than CHART_MAX new runs leave a gap: `gap` is then the
   * cursor below them and the caller starts over from these.
   */
  async function fetchNewRuns(name) {
    const known = page.sorted.length ? page.sorted[0].id : 0;
    const deepest = page.sorted.findLastIndex((r) => r.status === 'running');
    let limit = Math.min(CHART_MAX, Math.max(PAGE, deepest + 1));
    const fresh = [];
    let before = null;
    for (;;) {
      const cursor = before ? `&before=${before}` : '';
      const data = await api('GET', `/v1/runs?job=${enc(name)}&limit=${limit}${cursor}`);
      fresh.push(...data.runs);
      const oldest = data.runs.length ? data.runs[data.runs.length - 1].id : 0;
      if (!data.next_before || oldest <= known) return { fresh, gap: null };
      if (fresh.length >= CHART_MAX) return { fresh, gap: data.next_before };
      before = data.next_before;
      limit = PAGE;
    }
  }

  const FACTS = [
    ['schedule', 'Schedule'], ['timezone', 'Timezone'], ['next', 'Next fire'],
    ['upcoming', 'Then'], ['state', 'State'], ['running', 'Running'],
    ['last', 'Last outcome'], ['limits', 'Limits'], ['policy', 'Policies'],
    ['version', 'Version'],
  ];

  function renderFacts(job) {
    if (page.facts.size === 0) {
      const items = [];
      for (const [key, label] of FACTS) {
        const dd = h('dd', { 'data-testid': `fact-${key}` });
        page.facts.set(key, dd);
        items.push(h('div', {}, h('dt', {}, label), dd));
      }
      $('job-facts').replaceChildren(...items);
    }
    const fact = (key, text) => setText(page.facts.get(key), text);
    const schedule = job.schedule || {};
    fact('schedule', schedule.description
      ? `${schedule.description} (${schedule.expression})` : '—');
    fact('timezone', schedule.timezone || '—');
    page.nextMs = parseTime(job.next_fire);
    tickJobCountdown(Date.now());
    const upcoming = (job.next_fires || []).slice(1).map((t) => fmtTime(parseTime(t)));
    fact('upcoming', upcoming.length ? upcoming.join(', ') : '—');
    fact('state', jobState(job));
    setAttr(page.facts.get('state'), 'class', stateClass(job));
    fact('running', runningText(job));
    const last = job.last_run;
    fact('last', last
      ? `${last.status}${last.reason ? `: ${last.reason}` : ''} (${fmtTime(parseTime(last.started_at || last.scheduled_at))})`
      : 'no runs yet');
    const m = job.manifest || {};
    fact('limits', [
      `timeout ${fmtDuration(m.timeout_ms)}`, `memory ${fmtBytes(m.memory_bytes)}`,
      m.fuel ? `fuel ${fmtCount(m.fuel)}` : 'fuel unmetered',
      m.max_concurrent ? `max ${m.max_concurrent} concurrent` : null,
    ].filter(Boolean).join(' · '));
    fact('policy', [
      `overlap ${m.overlap}`, `misfire ${m.misfire}`, `${m.max_attempts} attempts`,
      m.breaker_failures ? `breaker after ${m.breaker_failures}` : null,
      m.jitter_ms ? `jitter ${fmtDuration(m.jitter_ms)}` : null,
    ].filter(Boolean).join(' · '));
    fact('version', `${(job.version || '').slice(0, 16)} (${job.shape})`);
    setAttr(page.facts.get('version'), 'title', job.version);

    setText($('job-name'), job.name);
    setAttr($('view-job'), 'data-paused', job.paused ? 'true' : 'false');
    setHidden($('job-pause'), job.paused);
    setHidden($('pause-note').parentElement, job.paused);
    setHidden($('job-resume'), !job.paused);
  }

  function tickJobCountdown(now) {
    if (!page || !page.facts.size) return;
    setText(page.facts.get('next'), page.nextMs === null
      ? '—' : `${fmtTime(page.nextMs)} (${fmtCountdown(page.nextMs, now)})`);
  }

  // -- the run table

  function makeRunRow(run) {
    const row = { id: run.id, runId: run.run_id, detail: null, detailFinal: false };
    row.num = h('td', { class: 'num' });
    row.status = h('span', { 'data-testid': 'run-status' });
    row.trigger = h('td', { 'data-testid': 'run-trigger' });
    row.attempt = h('td', { class: 'num' });
    row.started = h('td', {});
    row.duration = h('td', { class: 'num' });
    row.fuel = h('td', { class: 'num' });
    row.memory = h('td', { class: 'num' });
    row.reason = h('td', { class: 'reason' });
    row.toggle = h('button', {
      type: 'button', class: 'link', 'aria-expanded': 'false', 'data-testid': 'run-expand',
      onclick: () => toggleRun(row),
    }, 'Details');
    row.tr = h('tr', { 'data-testid': 'run-row', 'data-run-id': run.run_id, 'data-id': run.id },
      row.num, h('td', {}, row.status), row.trigger, row.attempt, row.started, row.duration,
      row.fuel, row.memory, row.reason, h('td', {}, row.toggle));
    row.body = h('div', { class: 'run-detail', 'data-testid': 'run-detail' });
    row.detailTr = h('tr', { class: 'detail' }, h('td', { colspan: '10' }, row.body));
    return row;
  }

  function updateRunRow(row, run) {
    setText(row.num, run.id);
    setAttr(row.num, 'title', run.run_id);
    setText(row.status, run.status);
    setAttr(row.status, 'class', statusClass(run.status));
    setAttr(row.status, 'title', run.outcome || null);
    setAttr(row.tr, 'data-status', run.status);
    setText(row.trigger, run.trigger);
    setText(row.attempt, run.attempt);
    setText(row.started, fmtTime(parseTime(run.started_at || run.scheduled_at)));
    setText(row.duration, fmtDuration(run.duration_ms));
    setText(row.fuel, fmtCount(run.fuel_used));
    setText(row.memory, fmtBytes(run.peak_memory));
    setText(row.reason, run.reason || '');
    setAttr(row.reason, 'title', run.reason || null);
  }

  // A run's network counts in one line; empty when it made no request.
  function fmtNet(net) {
    if (!net || !(net.requests || net.refused || net.limited)) return '';
    return `${net.requests} requests, ${net.refused} refused, ${net.limited} stopped by limits, ` +
      `${fmtBytes(net.bytes_in)} in, ${fmtBytes(net.bytes_out)} out`;
  }

  function renderDetail(row, run) {
    const meta = [
      ['run id', run.run_id], ['idempotency key', run.idempotency_key],
      ['slot', run.slot], ['scheduled', run.scheduled_at], ['started', run.started_at],
      ['finished', run.finished_at], ['outcome', run.outcome], ['retry at', run.retry_at],
      ['version', run.version], ['network', fmtNet(run.net)],
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    const logs = Array.isArray(run.logs) ? run.logs : [];
    const output = typeof run.output === 'string' ? run.output : JSON.stringify(run.output);
    const logLines = logs.map((entry) => {
      const dropped = Number(entry.fields_dropped) > 0 ? ` … ${Number(entry.fields_dropped)} more fields` : '';
      const fields = (Array.isArray(entry.fields)
        ? entry.fields.map((f) => (Array.isArray(f) ? `${f[0]}=${f[1]}` : String(f))).join(' ')
        : '') + dropped;
      return h('div', { class: `log-line lvl-${String(entry.level || '').replace(/[^a-z]/g, '')}` },
        h('span', { class: 'log-at' }, entry.at_ms ? fmtTime(entry.at_ms).slice(11) : ''),
        h('span', { class: 'log-level' }, String(entry.level || '')),
        h('span', { class: 'log-msg' }, String(entry.message ?? '')),
        fields ? h('span', { class: 'log-fields' }, fields) : null);
    });
    row.body.replaceChildren(
      h('dl', { class: 'meta' }, ...meta.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, String(v))))),
      h('h3', {}, 'Output'),
      h('pre', { class: 'output', 'data-testid': 'run-output' }, output || '(no output)'),
      h('h3', {}, `Logs (${logs.length})`),
      h('div', { class: 'logs', 'data-testid': 'run-logs' },
        ...(logLines.length ? logLines : [h('span', { class: 'muted' }, '(no logs)')])),
    );
  }

  async function loadDetail(row) {
    const current = page;
    try {
      const run = await api('GET', `/v1/runs/${enc(row.runId)}`);
      if (current !== page) return;
      row.detail = run;
      row.detailFinal = run.status !== 'running';
      renderDetail(row, run);
    } catch (err) {
      if (current !== page) return;
      row.body.replaceChildren(h('p', { class: 'error-text' }, `cannot load this run: ${err.message}`));
    }
  }

  function toggleRun(row) {
    const open = !page.expanded.has(row.id);
    if (open) page.expanded.add(row.id); else page.expanded.delete(row.id);
    setAttr(row.toggle, 'aria-expanded', open ? 'true' : 'false');
    setText(row.toggle, open ? 'Hide' : 'Details');
    if (open && !row.detail) {
      row.body.replaceChildren(h('span', { class: 'muted' }, 'loading…'));
      loadDetail(row);
    }
    renderRuns();
  }

  function renderRuns() {
    const visible = page.sorted.slice(0, page.shown);
    const keep = new Set();
    const trs = [];
    for (const run of visible) {
      let row = page.rows.get(run.id);
      if (!row) {
        row = makeRunRow(run);
        page.rows.set(run.id, row);
      }
      updateRunRow(row, run);
      keep.add(run.id);
      trs.push(row.tr);
      if (page.expanded.has(run.id)) {
        trs.push(row.detailTr);
        // A run still going when its details were fetched is fetched again once it ends.
        if (row.detail && !row.detailFinal && run.status !== 'running') {
          row.detailFinal = true;
          loadDetail(row);
        }
      }
    }
    for (const id of [...page.rows.keys()]) {
      if (!keep.has(id)) page.rows.delete(id);
    }
    placeRows($('runs-body'), trs);
    setHidden($('runs-empty'), page.sorted.length > 0);
    setHidden($('runs-more'), page.shown >= page.sorted.length && !page.olderCursor);
  }

  async function showOlder() {
    const button = $('runs-more');
    const current = page;
    if (page.shown < page.sorted.length) {
      page.shown += PAGE;
      renderRuns();
      return;
    }
    if (!page.olderCursor) return;
    button.disabled = true;
    try {
      const data = await api('GET',
        `/v1/runs?job=${enc(page.name)}&limit=${PAGE}&before=${page.olderCursor}`);
      if (current !== page) return;
      page.olderCursor = data.next_before;
      mergeRuns(data.runs);
      page.shown += PAGE;
      renderRuns();
    } catch (err) {
      flash(err.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  function revealRun(id) {
    const index = page.sorted.findIndex((r) => r.id === id);
    if (index < 0) return;
    page.shown = Math.max(page.shown, Math.ceil((index + 1) / PAGE) * PAGE);
    renderRuns();
    const row = page.rows.get(id);
    if (!row) return;
    if (!page.expanded.has(id)) toggleRun(row);
    row.tr.scrollIntoView({ block: 'center' });
  }

  // -- the chart (inline SVG, drawn here: no chart library)

  const SVG = 'http://www.w3.org/2000/svg';

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  /** 1, 2 or 5 times a power of ten, at least `v`. */
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (m * p >= v) return m * p;
    }
    return 10 * p;
  }

  function renderChart() {
    const runs = page.sorted.slice(0, CHART_MAX);
    const signature = runs.map((r) => `${r.id}${r.status[0]}${r.duration_ms ?? ''}`).join(',');
    if (signature === page.chartSignature) return;
    page.chartSignature = signature;
    const box = $('chart');
    const counts = {};
    for (const r of runs) counts[r.status] = (counts[r.status] || 0) + 1;
    setText($('chart-caption'), runs.length
      ? `(last ${runs.length} run${runs.length === 1 ? '' : 's'})` : '');
    if (!runs.length) {
      box.replaceChildren(h('p', { class: 'muted' }, 'No runs to chart yet.'));
      return;
    }
    const W = 900;
    const H = 220;
    const L = 64;
    const R = 14;
    const T = 12;
    const B = 30;
    const at = (r) => parseTime(r.started_at || r.scheduled_at);
    let t0 = Infinity;
    let t1 = -Infinity;
    let dMax = 0;
    for (const r of runs) {
      const t = at(r);
      if (t < t0) t0 = t;
      if (t > t1) t1 = t;
      if (r.duration_ms > dMax) dMax = r.duration_ms;
    }
    if (t1 - t0 < 1000) { t0 -= 30000; t1 += 30000; }
    const span = t1 - t0;
    t0 -= span * 0.02;
    t1 += span * 0.02;
    const yMax = niceCeil(dMax * 1.05);
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (d) => H - B - (d / yMax) * (H - T - B);

    const grid = [];
    for (let i = 0; i <= 4; i += 1) {
      const v = (yMax * i) / 4;
      const py = y(v);
      grid.push(s('line', { class: 'grid-line', x1: L, x2: W - R, y1: py, y2: py }));
      grid.push(s('text', { class: 'axis', x: L - 6, y: py + 4, 'text-anchor': 'end' }, fmtDuration(v)));
    }
    const long = t1 - t0 > 86400000;
    for (let i = 0; i <= 4; i += 1) {
      const t = t0 + ((t1 - t0) * i) / 4;
      const label = long ? fmtTime(t).slice(5, 16) : fmtTime(t).slice(11);
      const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
      grid.push(s('text', { class: 'axis', x: x(t), y: H - 8, 'text-anchor': anchor }, label));
    }
    const points = [];
    // Oldest first, so the newest points are drawn on top.
    for (let i = runs.length - 1; i >= 0; i -= 1) {
      const r = runs[i];
      const cx = x(at(r));
      const title = s('title', {}, `#${r.id} ${r.status} · ${fmtDuration(r.duration_ms)} · ` +
        `${fmtTime(at(r))}${r.reason ? ` · ${r.reason}` : ''}`);
      const common = {
        class: `pt st-${STATUSES.includes(r.status) ? r.status : 'other'}`,
        'data-testid': 'chart-point', 'data-id': r.id, 'data-status': r.status,
      };
      let mark;
      if (r.duration_ms === null || r.duration_ms === undefined) {
        // No duration (skipped, missed, still running): a tick on the time axis.
        const by = H - B;
        mark = s('rect', { ...common, x: cx - 2, y: by - 8, width: 4, height: 8 }, title);
      } else {
        mark = s('circle', { ...common, cx, cy: y(r.duration_ms), r: 3.5 }, title);
      }
      mark.addEventListener('click', () => revealRun(r.id));
      points.push(mark);
    }
    const legend = STATUSES.filter((st) => counts[st]).map((st) => h('span', { class: 'legend-item' },
      h('span', { class: `swatch st-${st}` }), `${st} ${counts[st]}`));
    const svg = s('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-testid': 'chart-svg',
      'aria-label': `run duration over time, ${runs.length} runs`,
    },
    s('line', { class: 'axis-line', x1: L, x2: L, y1: T, y2: H - B }),
    s('line', { class: 'axis-line', x1: L, x2: W - R, y1: H - B, y2: H - B }),
    ...grid, ...points);
    box.replaceChildren(svg, h('div', { class: 'legend' }, ...legend));
  }

  async function refreshJob(isCurrent) {
    const name = page.name;
    let job;
    try {
      job = await api('GET', `/v1/jobs/${enc(name)}`);
    } catch (err) {
      if (err.code === 'job_not_found' || err.code === 'job_invalid') {
        if (!isCurrent()) return;
        const detail = err.details && err.details.error ? `\n${err.details.error}` : '';
        showView('missing');
        setText($('missing-message'), `${err.message}${detail}`);
        return;
      }
      throw err;
    }
    if (!isCurrent()) return;
    showView('job');
    if (!page.loaded) {
      // First visit: one page big enough for the chart.
      const data = await api('GET', `/v1/runs?job=${enc(name)}&limit=${CHART_MAX}`);
      if (!isCurrent()) return;
      page.olderCursor = data.next_before;
      mergeRuns(data.runs);
      page.loaded = true;
    } else {
      const { fresh, gap } = await fetchNewRuns(name);
      if (!isCurrent()) return;
      if (gap) {
        page.runs.clear();
        page.olderCursor = gap;
      }
      mergeRuns(fresh);
    }
    renderFacts(job);
    renderRuns();
    renderChart();
  }

  // ---- routing and the refresh loop --------------------------------------------------

  let route = { view: 'jobs' };
  let generation = 0;

  function showView(view) {
    for (const name of ['jobs', 'job', 'missing']) setHidden($(`view-${name}`), name !== view);
  }

  function parseRoute() {
    const match = window.location.hash.match(/^#\/jobs\/(.+)$/);
    if (match) {
      try {
        return { view: 'job', name: decodeURIComponent(match[1]) };
      } catch (_) {
        return { view: 'jobs' };
      }
    }
    return { view: 'jobs' };
  }

  function onRoute() {
    route = parseRoute();
    generation += 1;
    if (route.view === 'job') {
      page = newPage(route.name);
      document.title = `${route.name} · sandcron`;
      $('runs-body').replaceChildren();
      $('chart').replaceChildren();
      $('job-facts').replaceChildren();
      setText($('job-name'), route.name);
      $('pause-note').value = '';
    } else {
      page = null;
      document.title = 'sandcron';
      showView('jobs');
    }
    kick();
  }

  let timer = null;
  let running = false;
  let again = false;

  async function loop() {
    clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    const mine = generation;
    const isCurrent = () => mine === generation;
    try {
      if (!document.hidden) {
        if (route.view === 'job') await refreshJob(isCurrent);
        else await refreshJobs(isCurrent);
        setConn(null);
      }
    } catch (err) {
      if (err.status !== 401) setConn(err);
    } finally {
      running = false;
      if (again) {
        again = false;
        timer = setTimeout(loop, 0);
      } else {
        timer = setTimeout(loop, REFRESH_MS);
      }
    }
  }

  /** Refreshes now (after an action or a route change). */
  function kick() {
    clearTimeout(timer);
    timer = setTimeout(loop, 0);
  }

  function tick() {
    const now = Date.now();
    if (route.view === 'jobs') {
      for (const row of jobRows.values()) {
        if (!row.tr.hidden) setText(row.countdown, fmtCountdown(row.nextMs, now));
      }
    } else {
      tickJobCountdown(now);
    }
  }

  function start() {
    $('job-filter').addEventListener('input', applyFilter);
    $('job-trigger').addEventListener('click', () => triggerJob(page.name, $('job-trigger')));
    $('job-pause').addEventListener('click', () =>
      pauseJob(page.name, $('pause-note').value.trim(), $('job-pause')));
    $('pause-note').addEventListener('keydown', (event) => {
      if (event.key === 'Enter') $('job-pause').click();
    });
    $('job-resume').addEventListener('click', () => resumeJob(page.name, $('job-resume')));
    $('runs-more').addEventListener('click', showOlder);
    window.addEventListener('hashchange', onRoute);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) kick();
    });
    setInterval(tick, 1000);
    onRoute();
  }

  start();
})();
