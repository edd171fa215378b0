// Flow 4's keys: the account's keys filtered by operator, asset, customer and state
// (active, future, expired by the key's window now), with paging; "New key" opens the key
// wizard; a key's end date, description and customer are edited (rule 6: nothing else
// changes after creation); one or many are deleted after a confirm. Each change answers
// which units have the new key set and which are pending, and the page says so.

import { api } from './api.js';
import { confirmDialog, fill, h, modal, problemView } from './dom.js';
import { localToRfc3339, showTime } from './time.js';
import { ACCESS_WORDS, keyLists, openKeyWizard } from './keywizard.js';
import { firstPage, loadPage, pagerControls } from './paging.js';

const LIMIT = 50;
const STATES = [['', 'Any state'], ['active', 'Active'], ['future', 'Future'], ['expired', 'Expired']];

// The key's state now, by its window (what the gateway's state filter also uses).
function stateOf(key, now = Date.now()) {
  if (now < Date.parse(key.valid_from)) return 'future';
  if (now >= Date.parse(key.valid_to)) return 'expired';
  return 'active';
}

// " units updated: u1; pending (offline, updated when they reconnect): u2." for a notice.
function distributionWords({ delivered, pending }) {
  const parts = [];
  if (delivered.length) parts.push(`units updated: ${delivered.join(', ')}`);
  if (pending.length) parts.push(`pending (offline, updated when they reconnect): ${pending.join(', ')}`);
  return parts.length ? ` ${parts.join('; ')}.` : '';
}

export async function render(view, ctx) {
  const params = ctx.params || [];
  const state = {
    filter: { operator_id: '', asset_id: '', customer_id: '', state: '' },
    cursors: [null], page: 0, items: [], selected: new Set(),
  };
  // #/keys/operator/<id>: the keys of one operator (from the operators page).
  if (params[0] === 'operator' && params[1]) state.filter.operator_id = params[1];
  if (params[0] === 'customer' && params[1]) state.filter.customer_id = params[1];
  const lists = { operators: [], assets: [], customers: [] };
  const pickers = {
    operator_id: h('select', { id: 'filter-operator', 'aria-label': 'Operator' }),
    asset_id: h('select', { id: 'filter-asset', 'aria-label': 'Asset' }),
    customer_id: h('select', { id: 'filter-customer', 'aria-label': 'Customer' }),
    state: h('select', { id: 'filter-state', 'aria-label': 'State' }, STATES.map(([value, label]) => h('option', { value }, label))),
  };
  for (const [name, picker] of Object.entries(pickers)) {
    picker.addEventListener('change', () => {
      state.filter[name] = picker.value;
      firstPage(state, load);
    });
  }
  const remove = h('button', { type: 'button', class: 'danger', id: 'delete-keys', disabled: true, onclick: () => removeKeys([...state.selected]) }, 'Delete selected');
  const list = h('div', { id: 'key-list' });
  const problems = h('div', { class: 'problem-area', id: 'key-problems' });
  const pager = h('div', { class: 'pager' });
  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Keys'),
      h('div', { class: 'actions' }, remove,
        // Rule 4: a key made under support access would open the machine after it ends.
        ctx.user.kind === 'staff' ? null
          : h('button', { type: 'button', class: 'primary', id: 'new-key', onclick: () => openKeyWizard({ ctx, done: load }) }, 'New key'))),
    h('div', { class: 'toolbar', id: 'key-filters' }, Object.values(pickers)),
    problems, list, pager);

  const name = (kind, id) => (lists[kind].find((x) => x.id === id) || {}).name || id;

  async function loadPickers() {
    try {
      Object.assign(lists, await keyLists(ctx.account));
    } catch (error) {
      fill(problems, problemView(error));
    }
    const options = (picker, any, items) => fill(picker, h('option', { value: '' }, any),
      items.map((item) => h('option', { value: item.id }, item.name)));
    options(pickers.operator_id, 'Any operator', lists.operators);
    options(pickers.asset_id, 'Any asset', lists.assets);
    options(pickers.customer_id, 'Any customer', lists.customers);
    for (const [key, picker] of Object.entries(pickers)) picker.value = state.filter[key];
  }

  function load() {
    return loadPage(list, state, '/v1/keys', { account_id: ctx.account, ...state.filter, limit: LIMIT }, () => {
      state.selected = new Set([...state.selected].filter((id) => state.items.some((k) => k.id === id)));
      draw();
    });
  }

  function drawSelection() {
    remove.disabled = state.selected.size === 0;
    remove.textContent = state.selected.size ? `Delete selected (${state.selected.size})` : 'Delete selected';
  }

  function draw() {
    drawSelection();
    const filtered = Object.values(state.filter).some(Boolean);
    fill(list, state.items.length ? h('table', { class: 'grid', id: 'keys-table' },
      h('thead', {}, h('tr', {}, h('th', { class: 'check' }, ''), h('th', {}, 'Key'), h('th', {}, 'Who'),
        h('th', {}, 'Assets'), h('th', {}, 'Access'), h('th', {}, 'From'), h('th', {}, 'To'),
        h('th', {}, 'Customer'), h('th', {}, 'State'), h('th', {}, ''))),
      h('tbody', {}, state.items.map((key) => h('tr', { 'data-id': key.id },
        h('td', { class: 'check' }, h('input', {
          type: 'checkbox', 'aria-label': `Select key ${key.description || key.id}`, checked: state.selected.has(key.id),
          onchange: (event) => { if (event.target.checked) state.selected.add(key.id); else state.selected.delete(key.id); drawSelection(); },
        })),
        h('td', {}, key.description || h('code', {}, key.id)),
        h('td', {}, key.personal ? name('operators', key.operator_id) : h('span', { class: 'muted' }, 'not personal')),
        h('td', {}, key.asset_ids.map((id) => name('assets', id)).join(', ')),
        h('td', {}, ACCESS_WORDS.get(key.access_type) || key.access_type,
          key.access_type === 'keypad_pin' ? h('small', {}, ` PIN ${key.credential}`) : null,
          key.access_type === 'digital_key' ? secretView(key) : null),
        h('td', { class: 'time' }, showTime(key.valid_from)),
        h('td', { class: 'time' }, showTime(key.valid_to)),
        h('td', {}, key.customer_id ? name('customers', key.customer_id) : '—'),
        h('td', {}, h('span', { class: `tag ${stateOf(key)}`, 'data-test': 'state' }, stateOf(key))),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary', 'data-test': 'edit-key', onclick: () => edit(key) }, 'Edit'),
          h('button', { type: 'button', class: 'link danger', 'data-test': 'delete-key', onclick: () => removeKeys([key.id]) }, 'Delete'))))))
      : h('p', { class: 'empty', id: 'no-keys' }, filtered ? 'No key matches.' : 'No keys yet.'));
    fill(pager, pagerControls(state, load));
  }

  async function removeKeys(ids) {
    problems.replaceChildren();
    const keys = state.items.filter((k) => ids.includes(k.id));
    const yes = await confirmDialog({
      title: ids.length === 1 ? 'Delete key' : `Delete ${ids.length} keys`,
      body: [h('p', {}, 'These keys stop opening their assets; the units get their new key sets now, or when they reconnect.'),
        h('ul', {}, keys.map((k) => h('li', {}, `${k.description || k.id}: ${k.asset_ids.map((id) => name('assets', id)).join(', ')}`)))],
      confirm: 'Delete', danger: true,
    });
    if (!yes) return;
    try {
      const answer = await api('POST', '/v1/keys/bulk-delete', { ids });
      ctx.notify(`Deleted ${answer.items.length === 1 ? 'a key' : `${answer.items.length} keys`};${distributionWords(answer.distribution)}`);
    } catch (error) {
      fill(problems, problemView(error));
      return;
    }
    state.selected.clear();
    load();
  }

  // A key's end date, description and customer (rule 6: nothing else changes).
  function edit(key) {
    const end = new Date(key.valid_to);
    const pad = (n) => String(n).padStart(2, '0');
    const form = {
      toDate: h('input', { type: 'date', id: 'edit-to-date', value: `${end.getFullYear()}-${pad(end.getMonth() + 1)}-${pad(end.getDate())}` }),
      toTime: h('input', { type: 'time', id: 'edit-to-time', value: `${pad(end.getHours())}:${pad(end.getMinutes())}` }),
      description: h('input', { id: 'edit-description', value: key.description || '', maxlength: 500 }),
      customer: h('select', { id: 'edit-customer' }, h('option', { value: '' }, 'No customer'),
        lists.customers.map((c) => h('option', { value: c.id }, c.name))),
    };
    form.customer.value = key.customer_id || '';
    const area = h('div', { class: 'problem-area' });
    const el = h('form', {},
      h('h2', {}, `Edit key ${key.description || key.id}`),
      h('p', { class: 'muted' }, `From ${showTime(key.valid_from)}; the operator, assets, access type and start stay as they are.`),
      h('label', { class: 'inline' }, h('span', { class: 'label' }, 'To'), form.toDate, form.toTime, h('small', {}, 'your local time')),
      h('label', { class: 'field' }, h('span', {}, 'Description'), form.description),
      h('label', { class: 'field' }, h('span', {}, 'Customer'), form.customer),
      area,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary', id: 'edit-save' }, 'Save')));
    const dialog = modal(el);
    dialog.id = 'key-edit';
    el.addEventListener('submit', async (event) => {
      event.preventDefault();
      const validTo = localToRfc3339(form.toDate.value, form.toTime.value);
      if (!validTo) {
        fill(area, problemView(new Error('Pick the date the key ends.')));
        return;
      }
      const patch = { description: form.description.value.trim(), customer_id: form.customer.value || null };
      // Only a changed end is sent: an unchanged one is not a change to judge.
      if (Date.parse(validTo) !== Date.parse(key.valid_to)) patch.valid_to = validTo;
      try {
        const answer = await api('PATCH', `/v1/keys/${encodeURIComponent(key.id)}`, patch);
        dialog.close();
        ctx.notify(`Saved the key ${answer.key.description || answer.key.id}, ending ${showTime(answer.key.valid_to)}.${distributionWords(answer.distribution)}`);
        load();
      } catch (error) {
        fill(area, problemView(error));
      }
    });
  }

  draw();
  await loadPickers();
  await load();
}

// A digital key's secret, folded: the holder's phone app needs it and the gateway never
// sends it by SMS, so the admin hands it over from here.
function secretView(key) {
  return h('details', { class: 'secret', 'data-test': 'secret' },
    h('summary', {}, 'Secret'), h('code', {}, key.credential));
}
