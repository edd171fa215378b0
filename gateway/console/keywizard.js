// Flow 4's key wizard: personal or not, the operator, the assets, the access type, From and
// To, the customer the key is for, a description; then the review (POST /v1/keys?dry_run=true:
// the key as the gateway would make it and the units it would reach), create, and which
// units have the key and which are pending (offline: they get it when they reconnect).

import { api, withQuery } from './api.js';
import { fill, h, modal, problemView } from './dom.js';
import { createCustomer } from './customers.js';
import { everything } from './paging.js';
import { localToRfc3339, showTime } from './time.js';

export const ACCESS_TYPES = [['digital_key', 'Digital key'], ['keypad_pin', 'Keypad PIN'], ['dualid_tag', 'DualID tag']];
export const ACCESS_WORDS = new Map(ACCESS_TYPES);

const pad = (n) => String(n).padStart(2, '0');
const dateOf = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const timeOf = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;

// Every item of a list answer (a few pages at most in a wizard's pickers).
// What a key names, for its pickers and its words: the account's operators, owned assets
// and customers, as { operators, assets, customers }.
export async function keyLists(account) {
  const scope = { account_id: account };
  const [operators, assets, customers] = await Promise.all([
    everything('/v1/operators', scope),
    everything('/v1/assets', { ...scope, relation: 'owned' }),
    everything('/v1/customers', scope),
  ]);
  return { operators, assets, customers };
}

// What a key says in words, for the review and the result.
export function keyFacts(key, { operators, assets, customers }) {
  const name = (list, id) => (list.find((x) => x.id === id) || {}).name;
  return h('dl', { class: 'facts', id: 'key-facts' },
    h('dt', {}, 'Who'), h('dd', {}, key.personal ? `${name(operators, key.operator_id) || key.operator_id} (personal)` : 'Anyone holding it (not personal)'),
    h('dt', {}, 'Assets'), h('dd', {}, key.asset_ids.map((id) => `${name(assets, id) || id} (${id})`).join(', ')),
    h('dt', {}, 'Access type'), h('dd', {}, ACCESS_WORDS.get(key.access_type) || key.access_type),
    h('dt', {}, 'From'), h('dd', { class: 'time' }, showTime(key.valid_from)),
    h('dt', {}, 'To'), h('dd', { class: 'time' }, showTime(key.valid_to)),
    h('dt', {}, 'Customer'), h('dd', {}, key.customer_id ? (name(customers, key.customer_id) || key.customer_id) : '—'),
    key.description ? [h('dt', {}, 'Description'), h('dd', {}, key.description)] : null);
}

// Opens the wizard; operator (optional) is picked already and makes the key personal.
// done() runs after a key is created and the result closed.
export function openKeyWizard({ ctx, operator = null, done = () => {} }) {
  const body = h('div', { class: 'dialog-body' });
  const dialog = modal(h('h2', {}, 'New key'), body);
  dialog.id = 'key-wizard';
  const lists = { operators: [], assets: [], customers: [] };
  const now = new Date();
  const form = {
    personal: h('input', { type: 'radio', name: 'personal', id: 'key-personal', checked: true }),
    shared: h('input', { type: 'radio', name: 'personal', id: 'key-not-personal' }),
    operator: h('select', { id: 'key-operator' }),
    assetFilter: h('input', { type: 'search', id: 'key-asset-search', placeholder: 'Search assets' }),
    assets: h('div', { class: 'checklist', id: 'key-assets' }),
    access: h('select', { id: 'key-access' }, ACCESS_TYPES.map(([value, label]) => h('option', { value }, label))),
    credential: h('input', { id: 'key-credential', placeholder: 'the tag id printed on the tag', autocomplete: 'off' }),
    fromDate: h('input', { type: 'date', id: 'key-from-date', value: dateOf(now) }),
    fromTime: h('input', { type: 'time', id: 'key-from-time', value: timeOf(now) }),
    toDate: h('input', { type: 'date', id: 'key-to-date' }),
    toTime: h('input', { type: 'time', id: 'key-to-time', value: '00:00' }),
    customer: h('select', { id: 'key-customer' }),
    description: h('input', { id: 'key-description', maxlength: 500, autocomplete: 'off' }),
  };
  const picked = new Set();
  const credentialField = h('label', { class: 'field', hidden: true }, h('span', {}, 'DualID tag id'), form.credential);
  const operatorField = h('label', { class: 'field' }, h('span', {}, 'Operator'), form.operator);
  const syncVisibility = () => {
    operatorField.hidden = !form.personal.checked;
    credentialField.hidden = form.access.value !== 'dualid_tag';
  };
  for (const input of [form.personal, form.shared, form.access]) input.addEventListener('change', syncVisibility);
  // An operator with an access type of their own (set on the Operators page) makes it the
  // key's default; the admin may still pick another.
  form.operator.addEventListener('change', () => {
    const picked = lists.operators.find((o) => o.id === form.operator.value);
    if (picked && picked.access_type) {
      form.access.value = picked.access_type;
      syncVisibility();
    }
  });

  function drawAssets() {
    const q = form.assetFilter.value.trim().toLowerCase();
    const shown = lists.assets.filter((a) => !q || `${a.id} ${a.name} ${a.serial || ''}`.toLowerCase().includes(q));
    fill(form.assets, shown.length ? shown.map((asset) => h('label', { class: 'inline' },
      h('input', {
        type: 'checkbox', value: asset.id, 'data-asset': asset.id, checked: picked.has(asset.id), 'aria-label': `Key for ${asset.name}`,
        onchange: (event) => { if (event.target.checked) picked.add(asset.id); else picked.delete(asset.id); },
      }), `${asset.name} (${asset.id})`, asset.device_id ? null : h('small', {}, ' no unit'))) : h('p', { class: 'muted' }, 'No asset matches.'));
  }
  form.assetFilter.addEventListener('input', drawAssets);

  function request() {
    const personal = form.personal.checked;
    if (personal && !form.operator.value) throw new Error('Pick the operator of a personal key.');
    if (!picked.size) throw new Error('Pick at least one asset.');
    const validFrom = localToRfc3339(form.fromDate.value, form.fromTime.value);
    const validTo = localToRfc3339(form.toDate.value, form.toTime.value);
    if (!validFrom) throw new Error('Pick the date the key starts (From).');
    if (!validTo) throw new Error('Pick the date the key ends (To).');
    const payload = {
      personal,
      asset_ids: lists.assets.filter((a) => picked.has(a.id)).map((a) => a.id),
      access_type: form.access.value,
      valid_from: validFrom,
      valid_to: validTo,
    };
    if (personal) payload.operator_id = form.operator.value;
    if (form.access.value === 'dualid_tag') payload.credential = form.credential.value.trim();
    if (form.customer.value) payload.customer_id = form.customer.value;
    if (form.description.value.trim()) payload.description = form.description.value.trim();
    return payload;
  }
  const keysPath = (dryRun) => withQuery('/v1/keys', { account_id: ctx.account, dry_run: dryRun ? 'true' : null });

  function choose(problem) {
    const area = h('div', { class: 'problem-area' }, problem ? problemView(problem) : null);
    fill(body,
      h('fieldset', { class: 'field' }, h('legend', {}, '1. Who'),
        h('label', { class: 'inline' }, form.personal, 'Personal: for one operator'),
        h('label', { class: 'inline' }, form.shared, 'Not personal: for anyone holding it'),
        operatorField),
      h('fieldset', { class: 'field' }, h('legend', {}, '2. Assets'), form.assetFilter, form.assets),
      h('fieldset', { class: 'field' }, h('legend', {}, '3. Access type'), form.access, credentialField),
      h('fieldset', { class: 'field' }, h('legend', {}, '4. When (your local time)'),
        h('label', { class: 'inline' }, h('span', { class: 'label' }, 'From'), form.fromDate, form.fromTime),
        h('label', { class: 'inline' }, h('span', { class: 'label' }, 'To'), form.toDate, form.toTime)),
      h('fieldset', { class: 'field' }, h('legend', {}, '5. For whom and why'),
        h('label', { class: 'field' }, h('span', {}, 'Customer'), form.customer),
        newCustomer(),
        h('label', { class: 'field' }, h('span', {}, 'Description'), form.description)),
      area,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
        h('button', { type: 'button', class: 'primary', id: 'key-review', onclick: review }, 'Review')));
    syncVisibility();

    async function review() {
      let payload;
      try {
        payload = request();
      } catch (error) {
        fill(area, problemView(error));
        return;
      }
      try {
        showReview(payload, await api('POST', keysPath(true), payload));
      } catch (error) {
        fill(area, problemView(error));
      }
    }
  }

  function showReview(payload, answer) {
    const area = h('div', { class: 'problem-area' });
    const units = answer.distribution.pending;
    const create = h('button', { type: 'button', class: 'primary', id: 'key-create' }, 'Create key');
    create.addEventListener('click', async () => {
      create.disabled = true;
      try {
        showResult(await api('POST', keysPath(false), payload));
      } catch (error) {
        // The state changed since the review (an asset's unit, an operator deleted).
        fill(area, problemView(error));
        create.disabled = false;
      }
    });
    fill(body,
      h('p', { class: 'summary', id: 'key-review-summary' }, 'The gateway checked this key without storing it:'),
      keyFacts(answer.key, lists),
      h('h3', {}, 'Units it will be sent to'),
      units.length ? h('ul', { id: 'key-review-units' }, units.map((u) => h('li', {}, h('code', {}, u))))
        : h('p', { class: 'muted', id: 'key-review-units' }, 'None of these assets has a unit yet: the key waits for one.'),
      area,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
        h('button', { type: 'button', class: 'secondary', id: 'back', onclick: () => choose() }, 'Back'),
        create));
  }

  function showResult(answer) {
    const { delivered, pending } = answer.distribution;
    const key = answer.key;
    fill(body,
      h('p', { class: 'summary', id: 'key-created' }, 'The key is created.'),
      keyFacts(key, lists),
      key.access_type === 'keypad_pin' ? h('p', { class: 'info', id: 'key-pin' }, `PIN: ${key.credential}`) : null,
      key.access_type === 'digital_key' ? h('p', { class: 'info', id: 'key-secret' },
        'Secret for the holder\'s phone app (never sent by SMS; also under Keys): ', h('code', {}, key.credential)) : null,
      h('h3', {}, 'Units that have it'),
      h('ul', { id: 'key-delivered' }, delivered.length ? delivered.map((u) => h('li', {}, h('code', {}, u)))
        : h('li', { class: 'muted' }, 'None yet.')),
      h('h3', {}, 'Pending'),
      h('ul', { id: 'key-pending' }, pending.length ? pending.map((u) => h('li', {}, h('code', {}, u), ' offline: gets it when it reconnects'))
        : h('li', { class: 'muted' }, 'None.')),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', id: 'key-done', onclick: () => { dialog.close(); done(); } }, 'Done')));
    const count = key.asset_ids.length;
    ctx.notify(`Created a ${ACCESS_WORDS.get(key.access_type) || key.access_type} key for ${count} ${count === 1 ? 'asset' : 'assets'}.`);
  }

  // "New customer": a name added to the account's customers (the gateway refuses one it
  // has, in words) and picked at once; the customers page manages the rest.
  function newCustomer() {
    const name = h('input', { id: 'key-customer-name', placeholder: 'New customer name', 'aria-label': 'New customer name', maxlength: 200, autocomplete: 'off' });
    const area = h('div', { class: 'problem-area' });
    const add = async () => {
      area.replaceChildren();
      let made;
      try {
        made = await createCustomer(ctx, name.value);
      } catch (error) {
        fill(area, problemView(error));
        return;
      }
      lists.customers.push(made);
      form.customer.append(h('option', { value: made.id }, made.name));
      form.customer.value = made.id;
      name.value = '';
      ctx.notify(`Added customer ${made.name}.`);
    };
    return h('div', { class: 'field' },
      h('div', { class: 'inline' }, name,
        h('button', { type: 'button', class: 'secondary', id: 'key-new-customer', onclick: add }, 'New customer'),
        h('a', { href: '#/customers', class: 'link', id: 'manage-customers', onclick: () => dialog.close() }, 'Manage customers')),
      area);
  }

  async function loadLists() {
    fill(body, h('p', { class: 'muted' }, 'Loading…'));
    try {
      Object.assign(lists, await keyLists(ctx.account));
    } catch (error) {
      fill(body, problemView(error), h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Close')));
      return;
    }
    fill(form.operator, h('option', { value: '' }, 'Pick the operator'),
      lists.operators.map((o) => h('option', { value: o.id }, o.phone ? `${o.name} (${o.phone})` : o.name)));
    fill(form.customer, h('option', { value: '' }, 'No customer'),
      lists.customers.map((c) => h('option', { value: c.id }, c.name)));
    if (operator) {
      form.operator.value = operator.id;
      if (operator.access_type) form.access.value = operator.access_type;
    }
    drawAssets();
    choose();
  }

  loadLists();
  return dialog;
}
