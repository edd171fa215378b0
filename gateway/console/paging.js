// Cursor-paged lists (docs/design.md §5.1), one way for every page that shows one. A list's
// state is { cursors: [null], page: 0, items: [] }: cursors[n] opens page n, so Previous
// goes back without the gateway keeping anything.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, problemView } from './dom.js';

// Every item of `path` with `params`, page by page (1,000 a page), for pickers and short
// lists that show all of them; at most EVERYTHING_MAX, so a huge account cannot hang the page.
export async function everything(path, params = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', withQuery(path, { ...params, cursor, limit: 1000 }));
    items.push(...page.items);
    cursor = page.next_cursor || null;
  } while (cursor && items.length < EVERYTHING_MAX);
  return items;
}

const EVERYTHING_MAX = 10000;

// Reads page state.page of `path` with `query` into state.items, remembers the next
// page's cursor, then draw(); a refusal is shown in `list`, busy while it loads.
export async function loadPage(list, state, path, query, draw) {
  list.setAttribute('aria-busy', 'true');
  try {
    const page = await api('GET', withQuery(path, { ...query, cursor: state.cursors[state.page] }));
    state.items = page.items;
    state.cursors[state.page + 1] = page.next_cursor || null;
    state.cursors.length = state.page + 2;
    await draw();
  } catch (error) {
    fill(list, problemView(error));
  } finally {
    list.removeAttribute('aria-busy');
  }
}

// The list again from its first page (a new search or filter): the old cursors are for
// other results.
export function firstPage(state, load) {
  state.cursors = [null];
  state.page = 0;
  return load();
}

// A search box and its button; a search sets state.q and reads the first page. `load` is
// called when the form is sent, so it may be defined after the toolbar.
export function searchToolbar(state, load, { input, button }) {
  const search = h('input', { type: 'search', ...input });
  const toolbar = h('form', { class: 'toolbar', role: 'search' },
    search, h('button', { type: 'submit', class: 'secondary', id: button }, 'Search'));
  toolbar.addEventListener('submit', (event) => {
    event.preventDefault();
    state.q = search.value.trim();
    firstPage(state, load);
  });
  return toolbar;
}

// Previous, "Page n" and Next for `state`; `load` reads the page moved to. `ids` names the
// three for tests (a page with two lists needs its own).
export function pagerControls(state, load, ids = {}) {
  const { previous = 'previous-page', page = null, next = 'next-page' } = ids;
  return [
    h('button', {
      type: 'button', class: 'secondary', id: previous, disabled: state.page === 0,
      onclick: () => { state.page -= 1; load(); },
    }, 'Previous'),
    h('span', { class: 'muted', id: page }, `Page ${state.page + 1}`),
    h('button', {
      type: 'button', class: 'secondary', id: next, disabled: !state.cursors[state.page + 1],
      onclick: () => { state.page += 1; load(); },
    }, 'Next'),
  ];
}

// Deletes one listed item after a confirm: DELETE `path`, the notice `done`, then `load`
// (the list again); a refusal is shown in `problems` and the list stays as it was.
export async function confirmDelete({ problems, title, body, path, done, notify, load }) {
  problems.replaceChildren();
  if (!(await confirmDialog({ title, body, confirm: 'Delete', danger: true }))) return;
  try {
    await api('DELETE', path);
    notify(done);
  } catch (error) {
    fill(problems, problemView(error));
    return;
  }
  load();
}
