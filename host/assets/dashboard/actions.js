// What the operator does from the dashboard (trigger, pause, resume; shared by the list and
// the job page) and how the page answers: a flash message per action, and the connection
// status in the header.

import { api } from './api.js';
import { $, enc, h, setAttr, setText } from './dom.js';
import { fmtTime } from './format.js';

let flashTimer = null;
let afterAction = () => {};

/** Sets what runs after every action (the app refreshes the view). */
export function onActionDone(callback) {
  afterAction = callback;
}

export function flash(text, kind) {
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

export function setConn(error) {
  const node = $('conn');
  if (error) {
    setAttr(node, 'class', 'conn error');
    setText(node, `not updated: ${error.message}`);
  } else {
    setAttr(node, 'class', 'conn');
    setText(node, `updated ${fmtTime(Date.now()).slice(11)}`);
  }
}

async function act(button, label, call) {
  button.disabled = true;
  try {
    const result = await call();
    flash(label(result), 'ok');
  } catch (err) {
    if (err.status !== 401) flash(err.message, 'error');
  } finally {
    button.disabled = false;
    afterAction();
  }
}

export function triggerJob(name, button) {
  return act(button, (r) => (r.status === 'queued'
    ? `${name}: queued behind the running run`
    : r.status === 'duplicate'
      ? `${name}: already triggered as run ${r.run_id}`
      : `${name}: started run ${r.run_id}`),
  () => api('POST', `/v1/jobs/${enc(name)}/trigger`, {}));
}

export function pauseJob(name, note, button) {
  return act(button, () => `${name}: paused`,
    () => api('POST', `/v1/jobs/${enc(name)}/pause`, { note }));
}

export function resumeJob(name, button) {
  return act(button, () => `${name}: resumed`,
    () => api('POST', `/v1/jobs/${enc(name)}/resume`));
}
