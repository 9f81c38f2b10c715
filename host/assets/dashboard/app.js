// sandcron dashboard (O5): plain JavaScript modules against the host's own /v1/ API, no
// build step and no third-party code, served from the binary. Two views chosen by the URL
// hash: the jobs list (#/) and one job (#/jobs/NAME) with its chart and runs.
//
// This module is the entry point: the route, the refresh loop (every few seconds, at once
// after an action or a route change, paused while the tab is hidden) and the page's
// buttons. The rest, one module each:
// - api.js: the fetch wrapper (JSON, errors, back to /login on 401);
// - dom.js: DOM helpers (text only, never innerHTML); format.js: times, sizes, states;
// - actions.js: trigger / pause / resume, flash messages, the connection status;
// - list.js: the jobs list; job.js: one job's page; runs.js: its run table;
//   chart.js: its duration chart.

import { onActionDone, pauseJob, resumeJob, setConn, triggerJob } from './actions.js';
import { $, showView } from './dom.js';
import { currentJob, openJob, refreshJob, tickJob } from './job.js';
import { applyFilter, refreshJobs, tickJobs } from './list.js';
import { showOlder } from './runs.js';

const REFRESH_MS = 3000;

let route = { view: 'jobs' };
let generation = 0;

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
    openJob(route.name);
    document.title = `${route.name} · sandcron`;
  } else {
    openJob(null);
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
  if (route.view === 'jobs') tickJobs(now);
  else tickJob(now);
}

function start() {
  onActionDone(kick);
  $('job-filter').addEventListener('input', applyFilter);
  $('job-trigger').addEventListener('click', () => triggerJob(currentJob().name, $('job-trigger')));
  $('job-pause').addEventListener('click', () =>
    pauseJob(currentJob().name, $('pause-note').value.trim(), $('job-pause')));
  $('pause-note').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') $('job-pause').click();
  });
  $('job-resume').addEventListener('click', () => resumeJob(currentJob().name, $('job-resume')));
  $('runs-more').addEventListener('click', () => showOlder(currentJob()));
  window.addEventListener('hashchange', onRoute);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) kick();
  });
  setInterval(tick, 1000);
  onRoute();
}

start();
