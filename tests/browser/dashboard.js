// Drives the sandcron dashboard in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) and prints one JSON line of what it saw; tests/e2e/dashboard.rs
// starts the host, runs this script and asserts on that JSON (and cross-checks the API).
//
// Usage: node dashboard.js open BASE_URL OUT_DIR JOB [HTML_JOB]
//        node dashboard.js token BASE_URL OUT_DIR TOKEN
//   open:  jobs table, trigger, pause/resume, chart, run details, screenshots; HTML_JOB is
//          a job whose newest run's output holds markup that must show as text
//        node dashboard.js compiling BASE_URL OUT_DIR JOB
//   token: / answers 401 with the login form; signing in shows the jobs table
//   compiling: JOB is listed under "Jobs compiling" while its first compile runs, then
//          moves to the jobs table once loaded
// Needs NODE_PATH to hold playwright-core (scripts/browser-setup.sh prints where).
// Exits non-zero, with the reason on stderr and in the JSON's "error", on any failure.
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const [mode, base, outDir, arg4, arg5] = process.argv.slice(2);
const job = mode === 'open' || mode === 'compiling' ? arg4 : null;
const htmlJob = mode === 'open' ? arg5 : null;
const token = mode === 'token' ? arg4 : null;
const TIMEOUT = 15000;
// A Python component's cold compile: ~15 s alone, more on a busy machine.
const COMPILE_TIMEOUT = 100000;
const result = { mode, steps: [] };

function step(name, extra) {
  result.steps.push(name);
  if (extra) Object.assign(result, extra);
}

function fail(message) {
  throw new Error(message);
}

/** Awaits `promise`; a timeout or other failure becomes `message` (plus the cause). */
async function must(promise, message) {
  try {
    return await promise;
  } catch (err) {
    return fail(`${message} (${err.message.split('\n')[0]})`);
  }
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // The machine has no internet: keep Chromium from trying to reach its services.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
}

/** Collects page errors: a thrown exception in app.js fails the test. */
function watch(page) {
  const errors = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 40[19]/.test(msg.text())) {
      errors.push(`console error: ${msg.text()}`);
    }
  });
  return errors;
}

async function openMode(browser) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  const errors = watch(page);

  // 1. The jobs table lists the jobs, with schedules and a ticking countdown.
  const response = await page.goto(`${base}/`);
  if (response.status() !== 200) fail(`GET / answered ${response.status()}`);
  const row = page.locator(`tr[data-testid="job-row"][data-job="${job}"]`);
  await must(row.waitFor(), `the jobs table never listed job ${job}`);
  const names = await page.locator('tr[data-testid="job-row"]').evaluateAll(
    (rows) => rows.map((r) => r.getAttribute('data-job')));
  if (names.length === 0) fail('the jobs table is empty');
  const schedule = (await row.locator('td.schedule').innerText()).trim();
  const countdown1 = (await row.locator('[data-testid="countdown"]').innerText()).trim();
  await page.waitForFunction(([name, before]) => {
    const el = document.querySelector(`tr[data-job="${name}"] [data-testid="countdown"]`);
    return el && el.textContent.trim() !== before;
  }, [job, countdown1], { timeout: 4000 }).catch(() => fail(`countdown stuck at ${countdown1}`));
  const invalid = await page.locator('tr[data-testid="invalid-row"]').evaluateAll(
    (rows) => rows.map((r) => ({
      name: r.getAttribute('data-job'),
      error: r.querySelector('[data-testid="invalid-error"]').textContent,
    })));
  // The filter narrows the table to matching jobs.
  await page.fill('#job-filter', job);
  const filtered = await page.locator('tr[data-testid="job-row"]:visible').count();
  await page.fill('#job-filter', 'no-such-job-zzz');
  const filteredNone = await page.locator('tr[data-testid="job-row"]:visible').count();
  await page.fill('#job-filter', '');
  step('jobs', { jobs: names, schedule, countdown: countdown1, invalid, filtered, filtered_none: filteredNone });
  await page.screenshot({ path: path.join(outDir, 'dashboard.png'), fullPage: true });

  // 2. Trigger from the jobs table: a flash names the new run.
  await row.locator('button[data-testid="trigger"]').click();
  const flash = page.locator('[data-testid="flash-text"]');
  await must(page.waitForFunction(() => /started run|queued/.test(
    (document.querySelector('[data-testid="flash-text"]') || {}).textContent || '')),
  'Trigger showed no "started run" message');
  const triggerFlash = (await flash.innerText()).trim();
  const match = triggerFlash.match(/started run (\S+)/);
  const triggeredRun = match ? match[1] : null;
  step('trigger', { trigger_flash: triggerFlash, triggered_run: triggeredRun });

  // 3. The job page: the triggered run appears in the run table.
  await row.locator('a[data-testid="job-link"]').click();
  await page.locator('#view-job:not([hidden])').waitFor();
  const title = (await page.locator('#job-name').innerText()).trim();
  if (title !== job) fail(`job page shows ${JSON.stringify(title)}, expected ${job}`);
  const runRow = triggeredRun
    ? page.locator(`tr[data-testid="run-row"][data-run-id="${triggeredRun}"]`)
    : page.locator('tr[data-testid="run-row"]').first();
  await must(runRow.waitFor(), `the run table never showed run ${triggeredRun}`);
  await page.waitForFunction((sel) => {
    const tr = document.querySelector(sel);
    return tr && tr.getAttribute('data-status') !== 'running';
  }, triggeredRun ? `tr[data-run-id="${triggeredRun}"]` : 'tr[data-testid="run-row"]');
  const runTrigger = (await runRow.locator('[data-testid="run-trigger"]').innerText()).trim();
  const runStatus = await runRow.getAttribute('data-status');
  const runCount = await page.locator('tr[data-testid="run-row"]').count();
  step('runs', { run_trigger: runTrigger, run_status: runStatus, run_rows: runCount });

  // 4. The chart has a data point per run.
  await must(page.locator('[data-testid="chart-point"]').first().waitFor(),
    'the chart drew no data point');
  const points = await page.locator('svg[data-testid="chart-svg"] [data-testid="chart-point"]').count();
  step('chart', { chart_points: points });

  // 5. Expanding the run shows its output and logs.
  await runRow.locator('button[data-testid="run-expand"]').click();
  const detail = page.locator('tr.detail [data-testid="run-output"]').first();
  await must(detail.waitFor(), 'expanding the run showed no output');
  const output = (await detail.innerText()).trim();
  const logs = (await page.locator('tr.detail [data-testid="run-logs"]').first().innerText()).trim();
  const expanded = await runRow.locator('button[data-testid="run-expand"]').getAttribute('aria-expanded');
  step('details', { run_output: output, run_logs: logs, expanded });
  await page.screenshot({ path: path.join(outDir, 'dashboard-job.png'), fullPage: true });

  // 6. Pause with a note: the page shows the paused state.
  await page.fill('#pause-note', 'browser test pause');
  await page.click('#job-pause');
  await must(page.locator('#view-job[data-paused="true"]').waitFor(),
    'Pause did not show the paused state');
  const pausedState = (await page.locator('[data-testid="fact-state"]').innerText()).trim();
  const resumeVisible = await page.locator('#job-resume').isVisible();
  // The API agrees (asked from node, not through the page).
  const apiJob = await (await fetch(`${base}/v1/jobs/${encodeURIComponent(job)}`)).json();
  step('pause', {
    paused_state: pausedState,
    resume_visible: resumeVisible,
    api_paused: apiJob.paused,
    api_pause_note: apiJob.pause_note,
  });

  // 7. A refused call shows the API's message: trigger while paused (409 job_paused).
  await page.click('#job-trigger');
  await must(page.waitForFunction(() => {
    const el = document.querySelector('#flash.error [data-testid="flash-text"]');
    return el && el.textContent.length > 0;
  }), 'a trigger refused by the API showed no error message');
  const errorFlash = (await flash.innerText()).trim();
  step('error', { error_flash: errorFlash });

  // 8. Resume clears it.
  await page.click('#job-resume');
  await must(page.locator('#view-job[data-paused="false"]').waitFor(),
    'Resume did not clear the paused state');
  const resumedState = (await page.locator('[data-testid="fact-state"]').innerText()).trim();
  step('resume', { resumed_state: resumedState });

  // 9. Back on the list, the row agrees.
  await page.goto(`${base}/#/`);
  await row.waitFor();
  await page.waitForFunction((name) => {
    const tr = document.querySelector(`tr[data-job="${name}"]`);
    return tr && tr.getAttribute('data-paused') === 'false';
  }, job);
  step('list-after', { list_state: (await row.locator('[data-testid="job-state"]').innerText()).trim() });

  // 10. Guest text is text: markup in a run's output is shown, never parsed.
  if (htmlJob) {
    await page.goto(`${base}/#/jobs/${encodeURIComponent(htmlJob)}`);
    const first = page.locator('tr[data-testid="run-row"]').first();
    await first.locator('button[data-testid="run-expand"]').click();
    const out = page.locator('tr.detail [data-testid="run-output"]').first();
    await out.waitFor();
    const text = await out.innerText();
    const injected = await page.evaluate(() => ({
      img: document.querySelectorAll('main img, main script, #view-job b').length,
      xss: window.__sandcronXss === true,
    }));
    step('escape', { html_output: text, html_elements: injected.img, html_executed: injected.xss });
  }

  if (errors.length) fail(errors.join('\n'));
}

async function tokenMode(browser) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = watch(page);

  const response = await page.goto(`${base}/`);
  const status = response.status();
  const hasForm = await page.locator('form[action="/login"] input[name="token"]').count();
  const message = (await page.locator('#login-message').innerText().catch(() => '')).trim();
  step('login-page', { status, login_form: hasForm > 0, login_message: message });
  await page.screenshot({ path: path.join(outDir, 'dashboard-login.png') });

  // A wrong token stays on the form.
  await page.fill('input[name="token"]', 'not-the-token');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
  const wrong = (await page.locator('#login-message').innerText().catch(() => '')).trim();
  step('wrong-token', { wrong_token_message: wrong });

  await page.fill('input[name="token"]', token);
  await page.click('button[type="submit"]');
  await must(page.locator('tr[data-testid="job-row"]').first().waitFor(),
    'signing in did not show the jobs table');
  const names = await page.locator('tr[data-testid="job-row"]').evaluateAll(
    (rows) => rows.map((r) => r.getAttribute('data-job')));
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'sandcron_token');
  step('signed-in', {
    jobs: names,
    url: page.url(),
    cookie_http_only: session ? session.httpOnly : null,
  });
  if (errors.length) fail(errors.join('\n'));
}

async function compilingMode(browser) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  const errors = watch(page);
  await page.goto(`${base}/`);
  const row = page.locator(`tr[data-testid="compiling-row"][data-job="${job}"]`);
  await must(row.waitFor(), `"Jobs compiling" never listed job ${job}`);
  const cells = await row.locator('th, td').allInnerTexts();
  const listed = await page.locator(`tr[data-testid="job-row"][data-job="${job}"]`).count();
  step('compiling', { compiling_row: cells.map((c) => c.trim()), in_jobs_table: listed > 0 });
  await page.screenshot({ path: path.join(outDir, 'dashboard-compiling.png'), fullPage: true });

  // Once compiled, the job moves to the jobs table and the section goes away.
  await must(page.locator(`tr[data-testid="job-row"][data-job="${job}"]`)
    .waitFor({ timeout: COMPILE_TIMEOUT }), `job ${job} never reached the jobs table`);
  await must(page.locator('#compiling-section').waitFor({ state: 'hidden' }),
    '"Jobs compiling" stayed after the compile');
  step('compiled');
  if (errors.length) fail(errors.join('\n'));
}

(async () => {
  let browser;
  try {
    if (!base || !outDir) fail('usage: node dashboard.js open|token BASE_URL OUT_DIR [JOB] [TOKEN]');
    browser = await launch();
    if (mode === 'open') await openMode(browser);
    else if (mode === 'token') await tokenMode(browser);
    else if (mode === 'compiling') await compilingMode(browser);
    else fail(`unknown mode ${mode}`);
    result.ok = true;
  } catch (err) {
    result.ok = false;
    result.error = `${err.message}`.split('\n').slice(0, 12).join('\n');
    process.exitCode = 1;
    console.error(`dashboard browser test failed after steps [${result.steps.join(', ')}]: ${err.message}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    console.log(JSON.stringify(result));
  }
})();
