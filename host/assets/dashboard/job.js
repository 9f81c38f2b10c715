// One job's page (#/jobs/NAME): its facts (schedule, next fires, state, limits, policies,
// version), its run table (runs.js) and its chart (chart.js). The page's state lives in one
// object, replaced whenever another job is opened; the old one is marked closed so that a
// fetch still under way for it changes nothing.

import { api } from './api.js';
import { $, enc, h, setAttr, setHidden, setText, showView } from './dom.js';
import {
  CHART_MAX, PAGE, fmtBytes, fmtCount, fmtCountdown, fmtDuration, fmtTime, jobState,
  parseTime, runningText, stateClass,
} from './format.js';
import { renderChart } from './chart.js';
import { mergeRuns, renderRuns, revealRun } from './runs.js';

/** The open job page, or null on the list. */
let page = null;

function newPage(name) {
  return {
    name,
    closed: false,
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

/** The open job page (null on the list). */
export function currentJob() {
  return page;
}

/** Opens job `name`'s page (empty until the first refresh), or closes it with null. */
export function openJob(name) {
  if (page) page.closed = true;
  page = name === null ? null : newPage(name);
  if (!page) return;
  $('runs-body').replaceChildren();
  $('chart').replaceChildren();
  $('job-facts').replaceChildren();
  setText($('job-name'), name);
  $('pause-note').value = '';
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
  tickJob(Date.now());
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

/** Moves the next-fire countdown on (every second). */
export function tickJob(now) {
  if (!page || !page.facts.size) return;
  setText(page.facts.get('next'), page.nextMs === null
    ? '—' : `${fmtTime(page.nextMs)} (${fmtCountdown(page.nextMs, now)})`);
}

/** Fetches the job and its new runs and brings the page up to date. */
export async function refreshJob(isCurrent) {
  const current = page;
  const name = current.name;
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
  if (!current.loaded) {
    // First visit: one page big enough for the chart.
    const data = await api('GET', `/v1/runs?job=${enc(name)}&limit=${CHART_MAX}`);
    if (!isCurrent()) return;
    current.olderCursor = data.next_before;
    mergeRuns(current, data.runs);
    current.loaded = true;
  } else {
    const { fresh, gap } = await fetchNewRuns(name);
    if (!isCurrent()) return;
    if (gap) {
      current.runs.clear();
      current.olderCursor = gap;
    }
    mergeRuns(current, fresh);
  }
  renderFacts(job);
  renderRuns(current);
  renderChart(current, (id) => revealRun(current, id));
}
