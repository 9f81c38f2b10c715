// The job page's chart: each run's duration over time as inline SVG, coloured by status,
// drawn here (no chart library). A run without a duration (skipped, missed, still running)
// is a tick on the time axis; a click on a point opens that run in the table.

import { $, h, setText } from './dom.js';
import { CHART_MAX, STATUSES, fmtDuration, fmtTime, parseTime } from './format.js';

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

/** Draws the page's newest runs (redrawn only when they changed); `onPick(id)` on a click. */
export function renderChart(page, onPick) {
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
    mark.addEventListener('click', () => onPick(r.id));
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
