// Flow 6, devices and their certificates: the account's units with their status (online,
// last seen, errors, whether the key set was delivered) and, for the account's admin, the
// client certificates of its units and integrations, each revocable after a confirm. The
// unit status words are shared with the live page.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, problemView } from './dom.js';
import { showTime } from './time.js';
import { everything, pagerControls } from './paging.js';
import { openRegister, rowProblems, unitActions } from './units.js';

const LIMIT = 50;

// What a person asks of a unit: is it there, when was it last heard, does it fail, and
// does it hold the keys it should.
export function keySetWords(status) {
  const pushed = status.key_version_pushed;
  const acked = status.key_version_acked;
  if (pushed === null || pushed === undefined) return 'no key set sent yet';
  if (acked === pushed) return `delivered (version ${pushed})`;
  return `pending: version ${pushed} sent, the unit holds ${acked === null || acked === undefined ? 'none' : `version ${acked}`}`;
}

export function onlineWords(status) {
  if (status.online) return status.connected_since ? `online since ${showTime(status.connected_since)}` : 'online';
  return 'offline';
}

export function errorWords(status) {
  if (!status.error_count) return 'none';
  const last = status.last_error ? `; last: ${status.last_error}` : '';
  const at = status.last_error_at ? ` (${showTime(status.last_error_at)})` : '';
  return `${status.error_count}${last}${at}`;
}

export function unitStatusFacts(status) {
  return h('dl', { class: 'facts', id: 'unit-facts' },
    h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `tag ${status.online ? 'ok' : 'bad'}`, id: 'unit-online' }, onlineWords(status))),
    h('dt', {}, 'Last seen'), h('dd', { class: 'time', id: 'unit-last-seen' }, status.last_seen ? showTime(status.last_seen) : 'never'),
    h('dt', {}, 'Readings'), h('dd', {}, String(status.points)),
    h('dt', {}, 'Errors'), h('dd', { id: 'unit-errors' }, errorWords(status)),
    h('dt', {}, 'Key set'), h('dd', { id: 'unit-keys' }, keySetWords(status)),
    status.clock_offset_ms !== null && status.clock_offset_ms !== undefined
      ? [h('dt', {}, 'Clock'), h('dd', {}, `${status.clock_offset_ms >= 0 ? '+' : ''}${status.clock_offset_ms} ms against the gateway`)] : null,
    status.last_disconnect_reason
      ? [h('dt', {}, 'Last disconnect'), h('dd', {}, `${status.last_disconnect_reason.replaceAll('_', ' ')} ${showTime(status.last_disconnect_at)}`)] : null);
}

const CAPABILITIES = [['bluetooth_relay', 'Bluetooth relay'], ['keypad', 'Keypad'], ['dualid', 'DualID reader']];

// Whether the page offers the account admin's actions (the gateway decides all the same).
export function administers(ctx) {
  if (ctx.user.kind === 'staff') return Boolean(ctx.account) && ctx.user.role !== 'platform_admin';
  return ctx.user.role === 'admin';
}

export async function render(view, ctx) {
  const state = { q: '', cursors: [null], page: 0 };
  const search = h('input', { type: 'search', id: 'device-search', placeholder: 'Unit or asset id', 'aria-label': 'Search units' });
  const toolbar = h('form', { class: 'toolbar', role: 'search' }, search,
    h('button', { type: 'submit', class: 'secondary', id: 'device-search-go' }, 'Search'));
  const list = h('div', { id: 'device-list' });
  const pager = h('div', { class: 'pager' });
  const certs = administers(ctx) ? h('section', { id: 'certificates' }) : null;
  // Admins and fleet admins register units and change them (rule 1).
  const problems = rowProblems();
  const reload = () => { problems.show(); load(); if (certs) renderCertificates(certs, ctx, load); };
  const unitCtx = ctx.canManageFleet ? { ...ctx, problem: problems.show, reload } : null;
  // Staff under support access get no unit key (rule 4): no registering, no certificate.
  const issuesKeys = unitCtx && ctx.user.kind !== 'staff';
  if (unitCtx) unitCtx.issuesKeys = issuesKeys;
  const register = issuesKeys ? h('button', {
    type: 'button', class: 'primary', id: 'register-unit', onclick: () => openRegister(unitCtx, reload),
  }, 'Register a unit') : null;
  toolbar.addEventListener('submit', (event) => {
    event.preventDefault();
    Object.assign(state, { q: search.value.trim(), cursors: [null], page: 0 });
    load();
  });
  fill(view, h('div', { class: 'page-head' }, h('h1', {}, 'Devices'), h('div', { class: 'actions' }, register)),
    toolbar, problems.el, list, pager, certs);

  async function load() {
    try {
      const page = await api('GET', withQuery('/v1/devices', {
        account_id: ctx.account, q: state.q, cursor: state.cursors[state.page], limit: LIMIT,
      }));
      state.cursors[state.page + 1] = page.next_cursor || null;
      // The periodic re-read redraws only what changed, so a row being clicked stays.
      const drawn = JSON.stringify(page.items);
      if (drawn !== list.dataset.drawn || !list.firstChild) {
        drawDevices(list, page.items, unitCtx);
        list.dataset.drawn = drawn;
      }
      fill(pager, pagerControls(state, load, { previous: null, next: null }));
    } catch (error) {
      fill(list, problemView(error));
      delete list.dataset.drawn;
    }
  }
  // A unit connecting or dropping brings no event to this page: the statuses are read
  // again every STATUS_EVERY_MS while it shows them.
  const timer = setInterval(() => {
    if (list.isConnected) load();
    else clearInterval(timer);
  }, STATUS_EVERY_MS);
  await load();
  if (certs) await renderCertificates(certs, ctx, load);
}

const STATUS_EVERY_MS = 10000;

function drawDevices(list, items, unitCtx) {
  if (!items.length) {
    fill(list, h('p', { class: 'empty', id: 'no-devices' }, 'No units registered.'));
    return;
  }
  fill(list, h('table', { class: 'grid', id: 'devices-table' },
    h('thead', {}, h('tr', {}, ['Unit', 'Asset', 'Status', 'Last seen', 'Errors', 'Key set', 'Fitted', unitCtx ? '' : null].filter((t) => t !== null).map((t) => h('th', {}, t)))),
    h('tbody', {}, items.map((d) => h('tr', { 'data-id': d.id },
      h('td', {}, h('code', {}, d.id)),
      h('td', {}, d.asset_id ? h('a', { href: `#/live/${encodeURIComponent(d.asset_id)}`, class: 'link' }, d.asset_id) : '—'),
      h('td', {}, h('span', { class: `tag ${d.status.online ? 'ok' : 'bad'}` }, onlineWords(d.status))),
      h('td', { class: 'time' }, d.status.last_seen ? showTime(d.status.last_seen) : 'never'),
      h('td', {}, errorWords(d.status)),
      h('td', { 'data-test': 'key-set' }, keySetWords(d.status)),
      h('td', { 'data-test': 'fitted' }, CAPABILITIES.filter(([k]) => d.capabilities[k]).map(([, label]) => label).join(', ') || '—'),
      unitCtx ? unitActions(d, unitCtx, unitCtx.reload) : null)))));
}

// `devicesChanged` re-reads the units' list: a revoke closes the unit's session.
async function renderCertificates(el, ctx, devicesChanged) {
  const account = ctx.account || ctx.user.account_id;
  const list = h('div', { id: 'cert-list' });
  fill(el, h('h2', {}, 'Certificates'),
    h('p', { class: 'muted' }, 'The client certificates of this account\'s units and integrations. A revoked certificate is refused at every later connection, and its live session closes at once.'),
    list);
  const load = async () => {
    let items;
    try {
      items = await everything(`/v1/accounts/${encodeURIComponent(account)}/certificates`);
    } catch (error) {
      fill(list, problemView(error));
      return;
    }
    if (!items.length) {
      fill(list, h('p', { class: 'empty' }, 'No certificates issued.'));
      return;
    }
    fill(list, h('table', { class: 'grid', id: 'certs-table' },
      h('thead', {}, h('tr', {}, ['For', 'Kind', 'Serial', 'Issued', 'Valid until', 'State', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((c) => h('tr', { 'data-serial': c.serial, 'data-tenant': c.tenant },
        h('td', {}, h('code', {}, c.tenant)),
        h('td', {}, c.kind === 'unit' ? 'Unit' : 'Integration'),
        h('td', {}, h('code', { title: c.serial }, `${c.serial.slice(0, 12)}…`)),
        h('td', { class: 'time' }, showTime(c.issued_at)),
        h('td', { class: 'time' }, showTime(c.not_after)),
        h('td', {}, c.revoked_at ? h('span', { class: 'tag bad' }, `revoked ${showTime(c.revoked_at)}`) : h('span', { class: 'tag ok' }, 'valid')),
        h('td', { class: 'row-actions' }, c.revoked_at ? null : h('button', {
          type: 'button', class: 'danger', 'data-test': 'revoke-cert', onclick: () => revoke(c),
        }, 'Revoke')))))));
  };
  const revoke = async (c) => {
    const yes = await confirmDialog({
      title: 'Revoke certificate',
      body: [h('p', {}, `The ${c.kind === 'unit' ? 'unit' : 'integration'} ${c.tenant} can no longer connect with this certificate; its live session closes now.`),
        h('p', { class: 'muted' }, `Serial ${c.serial}`)],
      confirm: 'Revoke', danger: true,
    });
    if (!yes) return;
    try {
      await api('POST', `/v1/accounts/${encodeURIComponent(account)}/certificates/${encodeURIComponent(c.serial)}/revoke`);
      ctx.notify(`Revoked the certificate of ${c.tenant}.`);
    } catch (error) {
      list.prepend(problemView(error));
      return;
    }
    await Promise.all([load(), devicesChanged()]);
  };
  await load();
}
