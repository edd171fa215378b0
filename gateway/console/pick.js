// An account picker: the accounts the caller may read (`GET /v1/accounts`: staff every
// account, a user its own and its sub-accounts), by name, instead of typing an id.

import { api, withQuery } from './api.js';
import { h } from './dom.js';

let cached = null;

// Every account the caller may read, [{id, name, parent_id}], read once per page view.
export async function readableAccounts({ fresh = false } = {}) {
  if (!cached || fresh) {
    const items = [];
    let cursor = null;
    do {
      const page = await api('GET', withQuery('/v1/accounts', { limit: 1000, cursor }));
      items.push(...page.items);
      cursor = page.next_cursor || null;
    } while (cursor);
    cached = items;
  }
  return cached;
}

export function forgetAccounts() { cached = null; }
window.addEventListener('hashchange', forgetAccounts);

// "Depot (sub-account of Acme)": a name and where it sits, so equal names stay apart.
export function accountLabel(account, all) {
  const parent = account.parent_id ? all.find((a) => a.id === account.parent_id) : null;
  return parent ? `${account.name} (in ${parent.name})` : account.name;
}

// A <select> of the readable accounts, `selected` chosen; `blank` adds a first empty choice.
export async function accountSelect({ id, label, selected, blank }) {
  const all = await readableAccounts();
  return h('select', { id, 'aria-label': label },
    blank ? h('option', { value: '' }, blank) : null,
    all.map((a) => h('option', { value: a.id, selected: a.id === selected }, accountLabel(a, all))));
}

// The name of account `id`, or its id when the caller cannot read it.
export async function accountName(id) {
  if (!id) return '';
  try {
    const found = (await readableAccounts()).find((a) => a.id === id);
    return found ? found.name : id;
  } catch (_) {
    return id;
  }
}
