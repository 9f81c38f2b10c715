// Formatting for the dashboard: times, spans, sizes and counts as people read them, and a
// job's state in words. Pure functions of their arguments (and the browser's time zone).

/** Statuses a run can have, in the order the chart's legend lists them. */
export const STATUSES = ['succeeded', 'failed', 'interrupted', 'running', 'skipped', 'missed'];
export const PAGE = 50; // runs per page of the run table
export const CHART_MAX = 500; // runs drawn in the chart

const pad = (n) => String(n).padStart(2, '0');

export function parseTime(text) {
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** Local time, `YYYY-MM-DD HH:MM:SS`. */
export function fmtTime(ms) {
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

export function fmtCountdown(targetMs, nowMs) {
  if (targetMs === null) return '';
  const delta = targetMs - nowMs;
  return delta <= 0 ? 'due now' : `in ${fmtSpan(delta)}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms === 0) return '0';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return fmtSpan(ms);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

export function fmtCount(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en');
}

/** A run's network counts in one line; empty when it made no request. */
export function fmtNet(net) {
  if (!net || !(net.requests || net.refused || net.limited)) return '';
  return `${net.requests} requests, ${net.refused} refused, ${net.limited} stopped by limits, ` +
    `${fmtBytes(net.bytes_in)} in, ${fmtBytes(net.bytes_out)} out`;
}

export function statusClass(status) {
  return STATUSES.includes(status) ? `badge st-${status}` : 'badge';
}

/** A job's state in words: paused, breaker, failure streak. */
export function jobState(job) {
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

export function stateClass(job) {
  if (job.paused || job.breaker === 'open' || job.load_error) return 'state warn';
  if (job.breaker === 'half-open' || job.consecutive_failures > 0) return 'state caution';
  return 'state ok';
}

export function runningText(job) {
  return job.waiting > 0 ? `${job.running} (+${job.waiting} waiting)` : String(job.running);
}
