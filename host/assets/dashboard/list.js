// The jobs list (#/): one row per job, keyed by name and updated in place, so the refresh
// every few seconds stays cheap with hundreds of jobs; a filter box; the job files that
// failed to load, and the jobs compiling in the background.

import { pauseJob, resumeJob, triggerJob } from './actions.js';
import { api } from './api.js';
import { $, enc, h, placeRows, setAttr, setHidden, setText } from './dom.js';
import {
  fmtCountdown, fmtTime, jobState, parseTime, runningText, stateClass, statusClass,
} from './format.js';

const jobRows = new Map(); // name -> row record
const sectionSignatures = new Map(); // section name -> what it last showed

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

/** Shows the rows that match every word in the filter box. */
export function applyFilter() {
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

/** Fills a section's table body from `items` (rebuilt only when they change); hides the
 * section when there are none. */
function renderSection(name, items, makeRow) {
  const signature = JSON.stringify(items);
  if (signature === sectionSignatures.get(name)) return;
  sectionSignatures.set(name, signature);
  $(`${name}-body`).replaceChildren(...items.map(makeRow));
  setHidden($(`${name}-section`), items.length === 0);
}

function invalidRow(item) {
  return h('tr', { 'data-testid': 'invalid-row', 'data-job': item.name },
    h('th', { scope: 'row', class: 'name' }, item.name),
    h('td', {}, h('pre', { class: 'error-text', 'data-testid': 'invalid-error' }, item.error)));
}

function compilingRow(item) {
  return h('tr', { 'data-testid': 'compiling-row', 'data-job': item.name },
    h('th', { scope: 'row', class: 'name' }, item.name),
    h('td', {}, fmtTime(parseTime(item.since))),
    h('td', { 'data-testid': 'compiling-meanwhile' }, jobRows.has(item.name)
      ? 'its previous version keeps running'
      : 'not running yet; slots due meanwhile follow its misfire policy'));
}

/** Fetches the jobs and brings the list up to date (unless the view changed meanwhile). */
export async function refreshJobs(isCurrent) {
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
  renderSection('invalid', data.invalid || [], invalidRow);
  renderSection('compiling', data.compiling || [], compilingRow);
}

/** Moves the visible countdowns on (every second). */
export function tickJobs(now) {
  for (const row of jobRows.values()) {
    if (!row.tr.hidden) setText(row.countdown, fmtCountdown(row.nextMs, now));
  }
}
