// Flow 2, Support Access: the account's Pending, Active and Archived support access, with
// who (the staff member), why, how long, and the ticket of a support case; approve, decline
// and revoke, each after a confirm dialog. Only the account's admin decides (rule 4): the
// gateway refuses anyone else, and the console shows its words.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, problemView } from './dom.js';
import { showTime } from './time.js';

const TABS = [['pending', 'Pending'], ['active', 'Active'], ['archived', 'Archived']];
const DURATIONS = { '24h': '24 hours', '14d': '14 days', '3mo': '3 months' };
const ROLES = { support: 'Support', tech_support: 'Tech support', platform_admin: 'Platform admin' };
const STATES = {
  pending: 'Pending', active: 'Active', declined: 'Declined', revoked: 'Revoked',
  expired: 'Expired', closed: 'Closed',
};

// The decisions a row offers in its tab; the gateway decides whether they are allowed.
const ACTIONS = {
  pending: [
    { verb: 'approve', label: 'Approve', style: 'primary', done: 'Approved', ask: 'will get admin rights in this account and its sub-accounts' },
    { verb: 'decline', label: 'Decline', style: 'secondary', done: 'Declined', ask: 'will not get access' },
  ],
  active: [
    { verb: 'revoke', label: 'Revoke', style: 'danger', done: 'Revoked', ask: 'loses access now; its live sessions end' },
  ],
  archived: [],
};

function why(access) {
  return access.ticket_id ? `Support case, ticket ${access.ticket_id}` : access.purpose;
}

function howLong(access) {
  if (access.ticket_id) return 'until the case is closed (at most 3 months)';
  return DURATIONS[access.duration] || access.duration || '';
}

function when(access, tab) {
  if (tab === 'pending') return `requested ${showTime(access.requested_at)}`;
  if (tab === 'active') return `${showTime(access.starts_at)} – ${showTime(access.ends_at)}`;
  const ended = access.ended_at || access.decided_at;
  return ended ? `${STATES[access.state] || access.state} ${showTime(ended)}` : STATES[access.state] || access.state;
}

export async function render(view, ctx) {
  const account = ctx.user.account_id;
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const list = h('div', { id: 'support-list' });
  let current = 'pending';

  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Support access')),
    h('p', { class: 'muted' }, 'Platform staff work in your account only with access you approve, for as long as you approve it. Every action they take is audited.'),
    tabs, list);

  function drawTabs() {
    fill(tabs, TABS.map(([key, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${key}`,
      class: key === current ? 'tab active' : 'tab',
      'aria-selected': key === current ? 'true' : 'false',
      onclick: () => { current = key; drawTabs(); load(); },
    }, label)));
  }

  async function load() {
    list.setAttribute('aria-busy', 'true');
    let items;
    try {
      const page = await api('GET', withQuery(`/v1/accounts/${encodeURIComponent(account)}/support-access`,
        { state: current, limit: 1000 }));
      items = page.items;
    } catch (error) {
      fill(list, problemView(error));
      return;
    } finally {
      list.removeAttribute('aria-busy');
    }
    const tab = current;
    if (!items.length) {
      fill(list, h('p', { class: 'empty', id: 'no-support' }, `No ${tab} support access.`));
      return;
    }
    const actions = ACTIONS[tab];
    fill(list, h('table', { class: 'grid', id: 'support-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Who'), h('th', {}, 'Why'), h('th', {}, 'How long'),
        h('th', {}, tab === 'archived' ? 'Ended' : 'When'), actions.length ? h('th', {}, '') : null)),
      h('tbody', {}, items.map((access) => h('tr', { 'data-id': access.id },
        h('td', {}, h('strong', {}, access.staff_name || access.staff_id), h('br'),
          h('small', {}, ROLES[access.staff_role] || access.staff_role)),
        h('td', {}, why(access), access.inherited ? h('small', { class: 'muted' }, ' (approved for a parent account)') : null),
        h('td', {}, howLong(access)),
        h('td', { class: 'time' }, when(access, tab)),
        actions.length ? h('td', { class: 'row-actions' }, actions.map((action) => h('button', {
          type: 'button', class: action.style, 'data-test': action.verb,
          onclick: () => decide(access, action),
        }, action.label))) : null)))));
  }

  async function decide(access, action) {
    const who = access.staff_name || access.staff_id;
    const yes = await confirmDialog({
      title: `${action.label} support access`,
      body: [h('p', {}, `${who} ${action.ask}.`), h('p', { class: 'muted' }, `Why: ${why(access)}. How long: ${howLong(access)}.`)],
      confirm: action.label,
      danger: action.style === 'danger',
    });
    if (!yes) return;
    try {
      await api('POST', `/v1/support-access/requests/${encodeURIComponent(access.id)}/${action.verb}`);
      ctx.notify(`${action.done} the support access of ${who}.`);
    } catch (error) {
      list.prepend(problemView(error));
      return;
    }
    load();
  }

  drawTabs();
  await load();
}
