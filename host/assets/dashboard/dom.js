// DOM helpers for the dashboard's modules. Everything from the API is untrusted text (job
// names, reasons, guest logs and output): it only ever reaches the page through
// textContent / createTextNode / setAttribute, never innerHTML. Updates touch a node only
// when its text or attribute changes, so the periodic refresh neither flickers nor
// rebuilds the DOM.

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;

/** Creates an element; props are attributes (plus `class`, `text` and `on*` listeners). */
export function h(tag, props, ...children) {
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

export function setText(node, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function setAttr(node, name, value) {
  const v = value === null || value === undefined ? null : String(value);
  if (v === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== v) {
    node.setAttribute(name, v);
  }
}

export function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

/** Puts `rows` (in order) into `body`, moving only the nodes out of place. */
export function placeRows(body, rows) {
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

/** Shows one of the views (`jobs`, `job`, `missing`) and hides the others. */
export function showView(view) {
  for (const name of ['jobs', 'job', 'missing']) setHidden($(`view-${name}`), name !== view);
}
