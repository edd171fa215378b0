// Flow 4's customers (`#/customers`): whom an account's keys are for (rule 6), listed
// with search and paging; a new customer by name, a rename, and a delete after a confirm.
// The gateway refuses a name the account has and a customer keys still name (409): the
// console shows its words. Admins and fleet admins; the key wizard links here.

import { api, withQuery } from './api.js';
import { fill, h, problemView } from './dom.js';
import { showTime } from './time.js';
import { confirmDelete, loadPage, pagerControls, searchToolbar } from './paging.js';

const LIMIT = 50;

// Adds a customer named `name` to the account; resolves the customer the gateway made.
export function createCustomer(ctx, name) {
  return api('POST', withQuery('/v1/customers', { account_id: ctx.account }), { name: name.trim() });
}

export async function render(view, ctx) {
  const state = { q: '', cursors: [null], page: 0, items: [] };
  const toolbar = searchToolbar(state, () => load(), {
    input: { id: 'customer-search', placeholder: 'Search by name', 'aria-label': 'Search customers' },
    button: 'search-customers',
  });
  const name = h('input', { id: 'customer-name', placeholder: 'Name', 'aria-label': 'Customer name', maxlength: 200, autocomplete: 'off' });
  const createForm = h('form', { class: 'toolbar', id: 'new-customer' }, name,
    h('button', { type: 'submit', class: 'primary', id: 'create-customer' }, 'Add customer'));
  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    try {
      const made = await createCustomer(ctx, name.value);
      ctx.notify(`Added customer ${made.name}.`);
      name.value = '';
    } catch (error) {
      fill(problems, problemView(error));
      return;
    }
    load();
  });
  const list = h('div', { id: 'customer-list' });
  const problems = h('div', { class: 'problem-area', id: 'customer-problems' });
  const pager = h('div', { class: 'pager' });
  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Customers'),
      h('a', { href: '#/keys', class: 'button secondary' }, 'Keys')),
    h('p', { class: 'muted' }, 'Whom keys are for (a rental client, a subcontractor). A key names one in the key wizard or when edited; a customer that keys name is kept.'),
    createForm, toolbar, problems, list, pager);

  const load = () => loadPage(list, state, '/v1/customers', { account_id: ctx.account, q: state.q, limit: LIMIT }, draw);

  function draw() {
    fill(list, state.items.length ? h('table', { class: 'grid', id: 'customers-table' },
      h('thead', {}, h('tr', {}, ['Name', 'Created', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, state.items.map((customer) => h('tr', { 'data-id': customer.id },
        h('td', {}, h('strong', {}, customer.name)),
        h('td', { class: 'time' }, showTime(customer.created_at)),
        h('td', { class: 'row-actions' },
          h('a', { href: `#/keys/customer/${encodeURIComponent(customer.id)}`, class: 'button secondary', 'data-test': 'customer-keys' }, 'Keys'),
          h('button', { type: 'button', class: 'secondary', 'data-test': 'rename-customer', onclick: (event) => rename(customer, event.target.closest('tr')) }, 'Rename'),
          h('button', { type: 'button', class: 'link danger', 'data-test': 'delete-customer', onclick: () => remove(customer) }, 'Delete'))))))
      : h('p', { class: 'empty', id: 'no-customers' }, state.q ? 'No customer matches.' : 'No customers yet.'));
    fill(pager, pagerControls(state, load));
  }

  // The row becomes a small form: the new name, Save or Cancel.
  function rename(customer, row) {
    problems.replaceChildren();
    const input = h('input', { id: 'rename-customer-name', value: customer.name, 'aria-label': `New name for ${customer.name}`, maxlength: 200 });
    const form = h('form', { class: 'inline', id: 'rename-customer' }, input,
      h('button', { type: 'submit', class: 'primary', id: 'rename-save' }, 'Save'),
      h('button', { type: 'button', class: 'secondary', id: 'rename-cancel', onclick: draw }, 'Cancel'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const renamed = await api('PATCH', `/v1/customers/${encodeURIComponent(customer.id)}`, { name: input.value.trim() });
        ctx.notify(`Renamed customer ${customer.name} to ${renamed.name}.`);
      } catch (error) {
        fill(problems, problemView(error));
        return;
      }
      load();
    });
    fill(row.firstChild, form);
    input.focus();
  }

  function remove(customer) {
    return confirmDelete({
      problems, load, notify: ctx.notify,
      title: 'Delete customer',
      body: `${customer.name} will be deleted. The gateway keeps a customer that keys still name.`,
      path: `/v1/customers/${encodeURIComponent(customer.id)}`,
      done: `Deleted customer ${customer.name}.`,
    });
  }

  draw();
  await load();
}
