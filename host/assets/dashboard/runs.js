// The job page's run table: rows keyed by ledger id and updated in place, pages of older
// runs on demand, and each run's details (output, logs, metadata) one click away.
//
// Every function takes the job `page` it works for (see job.js); a page that was closed
// (another job opened, or the list) while a fetch was under way is left alone.

import { flash } from './actions.js';
import { api } from './api.js';
import { $, enc, h, placeRows, setAttr, setHidden, setText } from './dom.js';
import {
  PAGE, fmtBytes, fmtCount, fmtDuration, fmtNet, fmtTime, parseTime, statusClass,
} from './format.js';

/** Adds `runs` to the page's runs (newest first). */
export function mergeRuns(page, runs) {
  for (const run of runs) page.runs.set(run.id, run);
  page.sorted = [...page.runs.values()].sort((a, b) => b.id - a.id);
}

function makeRunRow(page, run) {
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
    onclick: () => toggleRun(page, row),
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

async function loadDetail(page, row) {
  try {
    const run = await api('GET', `/v1/runs/${enc(row.runId)}`);
    if (page.closed) return;
    row.detail = run;
    row.detailFinal = run.status !== 'running';
    renderDetail(row, run);
  } catch (err) {
    if (page.closed) return;
    row.body.replaceChildren(h('p', { class: 'error-text' }, `cannot load this run: ${err.message}`));
  }
}

function toggleRun(page, row) {
  const open = !page.expanded.has(row.id);
  if (open) page.expanded.add(row.id); else page.expanded.delete(row.id);
  setAttr(row.toggle, 'aria-expanded', open ? 'true' : 'false');
  setText(row.toggle, open ? 'Hide' : 'Details');
  if (open && !row.detail) {
    row.body.replaceChildren(h('span', { class: 'muted' }, 'loading…'));
    loadDetail(page, row);
  }
  renderRuns(page);
}

/** Brings the run table up to date with the page's runs. */
export function renderRuns(page) {
  const visible = page.sorted.slice(0, page.shown);
  const keep = new Set();
  const trs = [];
  for (const run of visible) {
    let row = page.rows.get(run.id);
    if (!row) {
      row = makeRunRow(page, run);
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
        loadDetail(page, row);
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

/** The "Older runs" button: shows the next page, fetching it when none is loaded. */
export async function showOlder(page) {
  const button = $('runs-more');
  if (page.shown < page.sorted.length) {
    page.shown += PAGE;
    renderRuns(page);
    return;
  }
  if (!page.olderCursor) return;
  button.disabled = true;
  try {
    const data = await api('GET',
      `/v1/runs?job=${enc(page.name)}&limit=${PAGE}&before=${page.olderCursor}`);
    if (page.closed) return;
    page.olderCursor = data.next_before;
    mergeRuns(page, data.runs);
    page.shown += PAGE;
    renderRuns(page);
  } catch (err) {
    flash(err.message, 'error');
  } finally {
    button.disabled = false;
  }
}

/** Shows run `id` in the table with its details open (a click on the chart). */
export function revealRun(page, id) {
  const index = page.sorted.findIndex((r) => r.id === id);
  if (index < 0) return;
  page.shown = Math.max(page.shown, Math.ceil((index + 1) / PAGE) * PAGE);
  renderRuns(page);
  const row = page.rows.get(id);
  if (!row) return;
  if (!page.expanded.has(id)) toggleRun(page, row);
  row.tr.scrollIntoView({ block: 'center' });
}
