// Flow 6, the audit log: every change made in an account, who made it (and under which
// support access), filtered by actor, action and time, paged with the API's cursors
// (oldest first, as the log is kept). An account's admin reads its own account's log;
// the platform admin any account's, or the whole gateway's.

import { api, withQuery } from './api.js';
import { fill, h, problemView } from './dom.js';
import { localToRfc3339, showTime } from './time.js';
import { accountSelect, readableAccounts } from './pick.js';
import { everything, firstPage, pagerControls } from './paging.js';

const LIMIT = 50;
// Families of actions (`grant` is every `grant.*`), as the API filters them.
const FAMILIES = [
  ['', 'Any action'], ['account', 'Accounts'], ['asset', 'Assets'], ['certificate', 'Certificates'],
  ['customer', 'Customers'], ['device', 'Devices'], ['grant', 'Visibility grants'], ['key', 'Keys'],
  ['operator', 'Operators'], ['partnership', 'Partnerships'], ['profile', 'Sharing profiles'],
  ['retention', 'Retention'], ['session', 'Sign-ins'], ['sharing', 'Tenant sharing'],
  ['staff', 'Staff'], ['support', 'Support access'], ['user', 'Users'],
];

export async function render(view, ctx) {
  const platform = ctx.user.role === 'platform_admin';
  const start = ctx.account || ctx.user.account_id || '';
  const account = await accountSelect({ id: 'audit-account', label: 'Account', selected: start, blank: platform ? 'Every account' : null });
  const actor = h('input', { id: 'audit-actor', placeholder: 'Actor (user or staff id)', 'aria-label': 'Actor', list: 'audit-actors' });
  const actors = h('datalist', { id: 'audit-actors' });
  const action = h('select', { id: 'audit-action', 'aria-label': 'Action' }, FAMILIES.map(([v, l]) => h('option', { value: v }, l)));
  const fromDate = h('input', { type: 'date', id: 'audit-from', 'aria-label': 'From date' });
  const toDate = h('input', { type: 'date', id: 'audit-to', 'aria-label': 'To date (inclusive)' });
  // Newest first by default: an admin opening the log is usually after a recent change.
  const order = h('select', { id: 'audit-order', 'aria-label': 'Order' },
    h('option', { value: 'newest' }, 'Newest first'), h('option', { value: 'oldest' }, 'Oldest first'));
  const form = h('form', { class: 'toolbar wrap', id: 'audit-filter', role: 'search' },
    account, actor, actors, action,
    h('label', { class: 'inline' }, h('span', {}, 'From'), fromDate),
    h('label', { class: 'inline' }, h('span', {}, 'to'), toDate), order,
    h('button', { type: 'submit', class: 'secondary', id: 'audit-apply' }, 'Filter'));
  const list = h('div', { id: 'audit-list' });
  const pager = h('div', { class: 'pager' });
  fill(view, h('div', { class: 'page-head' }, h('h1', {}, 'Audit log')),
    h('p', { class: 'muted' }, 'Every change, with who made it and under which support access. Times in your zone.'),
    form, list, pager);

  const state = { filter: {}, cursors: [null], page: 0, names: new Map() };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const to = toDate.value ? new Date(Date.parse(localToRfc3339(toDate.value, '00:00')) + 86400e3) : null;
    state.filter = {
      account_id: account.value,
      actor: actor.value.trim(),
      action: action.value,
      order: order.value,
      from: fromDate.value ? localToRfc3339(fromDate.value, '00:00') : null,
      // The end date is inclusive for a person: the API's `to` is the next midnight.
      to: to ? to.toISOString() : null,
    };
    firstPage(state, load);
  });
  account.addEventListener('change', () => { loadActors(); form.requestSubmit(); });

  // Names for actor ids: the account's users (when the caller may list them) and staff
  // seen in support lists are not readable in general, so unknown ids stay ids.
  async function loadActors() {
    state.names = new Map();
    fill(actors);
    if (ctx.user.kind === 'staff') {
      // Staff may read the staff list (`GET /v1/staff`): their entries get names too.
      try {
        const staff = await everything('/v1/staff');
        for (const s of staff) state.names.set(s.id, s.name);
      } catch (_) {
        // A help, as the users' names below.
      }
    }
    if (!account.value) return;
    try {
      const users = await everything(`/v1/accounts/${encodeURIComponent(account.value)}/users`);
      for (const u of users) state.names.set(u.id, u.name);
      fill(actors, users.map((u) => h('option', { value: u.id }, u.name)));
    } catch (_) {
      // Names are a help, not the log: the log itself shows the refusal if there is one.
    }
  }

  async function load() {
    list.setAttribute('aria-busy', 'true');
    try {
      const page = await api('GET', withQuery('/v1/audit', { ...state.filter, cursor: state.cursors[state.page], limit: LIMIT }));
      state.cursors[state.page + 1] = page.next_cursor || null;
      state.cursors.length = state.page + 2;
      await draw(page.items);
    } catch (error) {
      fill(list, problemView(error));
      fill(pager);
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  async function draw(items) {
    const accounts = await readableAccounts().catch(() => []);
    const accountName = (id) => (accounts.find((a) => a.id === id) || { name: id || '—' }).name;
    const who = (id) => (state.names.has(id) ? `${state.names.get(id)} (${id})` : id);
    fill(list, items.length ? h('table', { class: 'grid compact', id: 'audit-table' },
      h('thead', {}, h('tr', {}, ['When', 'Who', 'Under', 'Account', 'Action', 'Target', 'Change'].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((e) => h('tr', { 'data-seq': e.seq },
        h('td', { class: 'time' }, showTime(e.at)),
        h('td', {}, who(e.actor)),
        h('td', {}, e.via ? `support access ${e.via}` : ''),
        h('td', {}, e.account_id ? accountName(e.account_id) : '—'),
        h('td', {}, h('code', {}, e.action)),
        h('td', {}, h('code', {}, e.target)),
        h('td', { class: 'change' }, change(e))))))
      : h('p', { class: 'empty', id: 'no-audit' }, 'No entries match.'));
    fill(pager, pagerControls(state, load, { previous: 'audit-previous', page: 'audit-page', next: 'audit-next' }));
  }

  await loadActors();
  form.requestSubmit();
}

function change(e) {
  if (e.before && e.after) return `${e.before} → ${e.after}`;
  return e.after || e.before || '';
}
