// A tiny DOM helper. Everything is built with createElement and text nodes: nothing that
// came from the server (or the user) is ever parsed as HTML.

// h('button', {class: 'primary', onclick: f}, 'Save') -> <button class="primary">Save</button>
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'hidden') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces el's children with children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A refusal or failure in words: the heading for its status and the server's own detail
// (an ApiProblem, or any Error). role=alert so it is announced.
export function problemView(error) {
  const heading = error && error.heading ? error.heading : 'Something went wrong.';
  const detail = error && error.detail ? error.detail : String(error && error.message || error);
  return h('div', { class: 'problem', role: 'alert' },
    h('strong', {}, heading), ' ', h('span', { class: 'detail' }, detail),
    error && error.field ? h('span', { class: 'field' }, ` (field: ${error.field})`) : null);
}

// A modal <dialog> appended to the body; close() removes it.
export function modal(...children) {
  const dialog = h('dialog', { class: 'dialog' }, ...children);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// Asks yes or no in a modal dialog; resolves true when the user confirms.
export function confirmDialog({ title, body, confirm, danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const dialog = modal(
      h('h2', {}, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'),
        h('button', {
          type: 'button',
          class: danger ? 'danger' : 'primary',
          'data-test': 'confirm',
          onclick: () => { answer = true; dialog.close(); },
        }, confirm)));
    dialog.addEventListener('close', () => resolve(answer));
  });
}
