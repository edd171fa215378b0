// Flow 6, Administration: an account's users and roles (add, change a role, disable and
// enable, rotate the API token, a one-time password link or a password reset, delete),
// and for the platform admin the partnerships between organizations. Each change asks
// first; each refusal is shown in the gateway's words (the last admin kept, rule 4's "no
// lasting access" for staff, rule 3 for partnerships).

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, modal, problemView } from './dom.js';
import { showTime } from './time.js';
import { accountLabel, accountSelect, readableAccounts } from './pick.js';
import { shareTargets } from './visibility.js';
import { everything } from './paging.js';

const ROLES = [['admin', 'Admin'], ['fleet_admin', 'Fleet admin'], ['viewer', 'Viewer']];
const roleWord = (role) => (ROLES.find(([r]) => r === role) || [role, role])[1];

// The account a page starts in: the one staff work in, else the user's own.
function startAccount(ctx) { return ctx.account || ctx.user.account_id || null; }

export async function renderUsers(view, ctx) {
  let account = startAccount(ctx);
  const picker = await accountSelect({ id: 'users-account', label: 'Account', selected: account, blank: account ? null : 'Choose an account' });
  const list = h('div', { id: 'user-list' });
  const name = h('input', { id: 'new-user-name', placeholder: 'Name', 'aria-label': 'Name', required: true });
  const role = h('select', { id: 'new-user-role', 'aria-label': 'Role' }, ROLES.map(([v, l]) => h('option', { value: v, selected: v === 'viewer' }, l)));
  const add = h('form', { class: 'toolbar', id: 'add-user' }, name, role, h('button', { type: 'submit', class: 'primary', id: 'create-user' }, 'Add user'));
  const problems = h('div', { id: 'user-problems' });
  // Support staff under an account's access read its users and change none (rule 4: the
  // access creates nothing that outlives it); the gateway refuses, so no button offers it.
  const readOnly = ctx.user.kind === 'staff' && ctx.user.role !== 'platform_admin';
  const readOnlyNote = h('p', { class: 'info', id: 'users-read-only' },
    'Support access reads the users and changes none of them: it creates no lasting access (rule 4).');
  fill(view, h('div', { class: 'page-head' }, h('h1', {}, 'Users'), h('label', { class: 'inline' }, h('span', {}, 'Account'), picker)),
    h('p', { class: 'muted' }, 'People who use this account, with their roles. An admin administers the account and its sub-accounts; a fleet admin manages its fleet; a viewer only looks.'),
    readOnly ? readOnlyNote : add, problems, list);
  picker.addEventListener('change', () => { account = picker.value || null; load(); });
  add.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    try {
      const created = await api('POST', `/v1/accounts/${encodeURIComponent(account)}/users`, { name: name.value.trim(), role: role.value });
      name.value = '';
      ctx.notify(`Added ${created.name || 'the user'} as ${roleWord(role.value)}.`);
      showSecret({ title: `User ${created.id} added`, what: 'Their API token, shown this once:', secret: created.token, account, user: created });
    } catch (error) {
      problems.append(problemView(error));
      return;
    }
    load();
  });

  const users = () => `/v1/accounts/${encodeURIComponent(account)}/users`;
  async function load() {
    problems.replaceChildren();
    if (!account) { fill(list, h('p', { class: 'empty' }, 'Choose an account.')); return; }
    try {
      const items = await everything(users());
      // An account without an active admin is usually getting its first one.
      role.value = items.some((u) => u.role === 'admin' && !u.disabled) ? 'viewer' : 'admin';
      drawUsers(items);
    } catch (error) {
      fill(list, problemView(error));
    }
  }

  function drawUsers(items) {
    fill(list, h('table', { class: 'grid', id: 'users-table' },
      h('thead', {}, h('tr', {}, ['Name', 'Role', 'State', 'Token last used', 'Added', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((u) => h('tr', { 'data-id': u.id, class: u.disabled ? 'disabled' : null },
        h('td', {}, h('strong', {}, u.name), h('br'), h('small', {}, h('code', {}, u.id))),
        h('td', {}, roleSelect(u)),
        h('td', {}, u.disabled ? h('span', { class: 'tag bad' }, `disabled ${showTime(u.disabled_at)}`) : h('span', { class: 'tag ok' }, 'active')),
        h('td', { class: 'time' }, u.last_used_at ? showTime(u.last_used_at) : 'never'),
        h('td', { class: 'time' }, showTime(u.created_at)),
        h('td', { class: 'row-actions' }, userActions(u)))))));
  }

  function roleSelect(u) {
    if (readOnly) return roleWord(u.role);
    const select = h('select', { 'aria-label': `Role of ${u.name}`, 'data-test': 'role' },
      ROLES.map(([v, l]) => h('option', { value: v, selected: v === u.role }, l)));
    select.addEventListener('change', async () => {
      const next = select.value;
      const ok = await change(u, { role: next }, {
        title: 'Change role', confirm: 'Change role',
        body: `${u.name} becomes ${roleWord(next)}. Their console sessions end, so they sign in again with the new rights.`,
        done: `${u.name} is now ${roleWord(next)}.`,
      });
      if (!ok) select.value = u.role;
    });
    return select;
  }

  function userActions(u) {
    if (readOnly) return [];
    const button = (test, label, style, onclick) => h('button', { type: 'button', class: style, 'data-test': test, onclick }, label);
    return [
      button('invite', 'Password link', 'secondary', () => invite(u, false)),
      button('reset', 'Reset password', 'secondary', () => invite(u, true)),
      button('rotate', 'Rotate token', 'secondary', () => rotate(u)),
      u.disabled
        ? button('enable', 'Enable', 'secondary', () => change(u, { disabled: false }, {
          title: 'Enable user', confirm: 'Enable', body: `${u.name} may work again once given a new token or password.`, done: `Enabled ${u.name}.`,
        }))
        : button('disable', 'Disable', 'danger', () => change(u, { disabled: true }, {
          title: 'Disable user', confirm: 'Disable', danger: true,
          body: `${u.name} loses access now: their token stops working and their sessions and live streams end.`, done: `Disabled ${u.name}.`,
        })),
      button('delete', 'Delete', 'link danger', () => remove(u)),
    ];
  }

  // One PATCH after a confirm; true when it was made.
  async function change(u, patch, words) {
    const yes = await confirmDialog({ title: words.title, body: h('p', {}, words.body), confirm: words.confirm, danger: words.danger });
    if (!yes) return false;
    try {
      await api('PATCH', `${users()}/${encodeURIComponent(u.id)}`, patch);
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return false;
    }
    ctx.notify(words.done);
    await load();
    return true;
  }

  async function rotate(u) {
    const yes = await confirmDialog({
      title: 'Rotate token', confirm: 'Rotate', danger: true,
      body: h('p', {}, `${u.name}'s API token stops working now; scripts using it need the new one.`),
    });
    if (!yes) return;
    try {
      const answer = await api('POST', `${users()}/${encodeURIComponent(u.id)}/token`);
      ctx.notify(`Rotated the token of ${u.name}.`);
      showSecret({ title: `New token for ${u.name}`, what: 'The new API token, shown this once:', secret: answer.token });
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return;
    }
    load();
  }

  async function invite(u, reset) {
    if (reset) {
      const yes = await confirmDialog({
        title: 'Reset password', confirm: 'Reset', danger: true,
        body: h('p', {}, `${u.name}'s password and console sessions end now; they set a new password with the link.`),
      });
      if (!yes) return;
    }
    try {
      const link = await api('POST', withQuery(`${users()}/${encodeURIComponent(u.id)}/password-invitation`, { reset: reset ? 'true' : null }));
      ctx.notify(reset ? `Reset the password of ${u.name}.` : `Made a password link for ${u.name}.`);
      showSecret({
        title: `Password link for ${u.name}`,
        what: `Give ${u.name} this one-time link (valid until ${showTime(link.expires_at)}); it replaces any earlier one:`,
        secret: `${location.origin}/#/set-password/${link.token}`,
      });
    } catch (error) {
      problems.replaceChildren(problemView(error));
    }
  }

  async function remove(u) {
    const yes = await confirmDialog({
      title: 'Delete user', confirm: 'Delete', danger: true,
      body: h('p', {}, `${u.name} is deleted; what they created stays with the account.`),
    });
    if (!yes) return;
    try {
      await api('DELETE', `${users()}/${encodeURIComponent(u.id)}`);
      ctx.notify(`Deleted ${u.name}.`);
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return;
    }
    load();
  }

  await load();
}

// A secret shown once in a dialog (a token, a link), selectable for copying.
export function showSecret({ title, what, secret }) {
  const field = h('input', { id: 'secret', class: 'secret', readonly: true, value: secret, 'aria-label': title });
  const dialog = modal(h('h2', {}, title), h('p', {}, what), field,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', id: 'secret-done', onclick: () => dialog.close() }, 'Done')));
  field.select();
  return dialog;
}

// Partnerships: the platform admin makes and ends them (rule 3); an account's admin sees
// those of its account, read-only.
export async function renderPartnerships(view, ctx) {
  const platform = ctx.user.role === 'platform_admin';
  const list = h('div', { id: 'partnership-list' });
  const problems = h('div', { id: 'partnership-problems' });
  let form = null;
  if (platform) {
    const a = await accountSelect({ id: 'partner-a', label: 'First account', blank: 'First account' });
    const b = await accountSelect({ id: 'partner-b', label: 'Second account', blank: 'Second account' });
    form = h('form', { class: 'toolbar', id: 'new-partnership' }, a, h('span', { class: 'muted' }, 'and'), b,
      h('button', { type: 'submit', class: 'primary', id: 'create-partnership' }, 'Create partnership'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      problems.replaceChildren();
      const [nameA, nameB] = [a.selectedOptions[0].textContent, b.selectedOptions[0].textContent];
      const yes = await confirmDialog({
        title: 'Create partnership', confirm: 'Create',
        body: h('p', {}, `${nameA} and ${nameB} may then share assets with each other.`),
      });
      if (!yes) return;
      try {
        await api('POST', '/v1/partnerships', { account_a: a.value, account_b: b.value });
        ctx.notify(`${nameA} and ${nameB} are partners.`);
      } catch (error) {
        problems.append(problemView(error));
        return;
      }
      load();
    });
  }
  fill(view, h('div', { class: 'page-head' }, h('h1', {}, 'Partnerships')),
    h('p', { class: 'muted' }, 'Sharing across organizations, or across the branches of one, needs a partnership. Only a platform admin makes or ends one.'),
    form, problems, list);

  async function load() {
    let items; let all; let partners = [];
    try {
      items = await everything('/v1/partnerships');
      all = await readableAccounts();
      // A user cannot read a partner organization's account, but may share with it: the
      // share targets name it (staff read every account already).
      if (!platform) partners = await shareTargets('', null);
    } catch (error) {
      fill(list, problemView(error));
      return;
    }
    if (!items.length) { fill(list, h('p', { class: 'empty', id: 'no-partnerships' }, 'No partnerships.')); return; }
    const label = (id) => {
      const found = all.find((x) => x.id === id);
      if (found) return accountLabel(found, all);
      const partner = partners.find((t) => t.account_id === id);
      return partner ? `${partner.name} (${id})` : id;
    };
    fill(list, h('table', { class: 'grid', id: 'partnerships-table' },
      h('thead', {}, h('tr', {}, ['Between', 'And', 'Since', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((p) => h('tr', { 'data-id': p.id },
        h('td', {}, label(p.account_a)), h('td', {}, label(p.account_b)), h('td', { class: 'time' }, showTime(p.created_at)),
        h('td', { class: 'row-actions' }, platform ? h('button', {
          type: 'button', class: 'danger', 'data-test': 'end-partnership', onclick: () => end(p, label),
        }, 'End') : null))))));
  }

  async function end(p, label) {
    const yes = await confirmDialog({
      title: 'End partnership', confirm: 'End', danger: true,
      body: h('p', {}, `${label(p.account_a)} and ${label(p.account_b)} stop being partners. Visibility grants and tenant shares that relied on it end now.`),
    });
    if (!yes) return;
    try {
      const ended = await api('DELETE', `/v1/partnerships/${encodeURIComponent(p.id)}`);
      const grants = ended.ended_grants.length;
      ctx.notify(`Ended the partnership; ${grants} visibility grant${grants === 1 ? '' : 's'} ended with it.`);
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return;
    }
    load();
  }

  await load();
}
