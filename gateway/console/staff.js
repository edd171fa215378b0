// Flow 7, Staff: a support member requests access to an account (purpose, duration) and
// follows its state; tech support opens and closes support cases; staff under access
// switch into the account and work there under a banner that says under which access and
// until when (or, without access, why the gateway will refuse). The platform admin's page
// creates organizations, sub-accounts and staff members.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, problemView } from './dom.js';
import { showTime } from './time.js';
import { accountName, accountSelect, forgetAccounts, readableAccounts, accountLabel } from './pick.js';
import { showSecret } from './admin.js';
import { everything } from './paging.js';

const DURATIONS = [['24h', '24 hours'], ['14d', '14 days'], ['3mo', '3 months']];
const STATES = { pending: 'Waiting for approval', active: 'Active', declined: 'Declined', revoked: 'Revoked', expired: 'Expired', closed: 'Closed' };
const LISTS = ['pending', 'active', 'archived'];

const why = (a) => (a.ticket_id ? `support case ${a.ticket_id}` : a.purpose);

// Every support access of `account` (the three lists), optionally only `staffId`'s.
async function accessesOf(account, staffId) {
  const lists = await Promise.all(LISTS.map((state) => api('GET',
    withQuery(`/v1/accounts/${encodeURIComponent(account)}/support-access`, { state, limit: 1000 }))));
  return lists.flatMap((page) => page.items).filter((a) => !staffId || a.staff_id === staffId);
}

// The banner over every page a staff member works in an account: under which access and
// until when, or why the gateway will refuse.
export function staffBanner(user, account) {
  const banner = h('div', { class: 'banner', id: 'acting-banner', role: 'status' }, `Working in account ${account}…`);
  (async () => {
    const name = await accountName(account);
    if (user.role === 'platform_admin') {
      fill(banner, `Viewing ${name} as platform admin. A platform admin gets no account rights from support cases (rule 4).`);
      return;
    }
    let mine;
    try {
      mine = await accessesOf(account, user.principal_id);
    } catch (error) {
      banner.className = 'banner warn';
      fill(banner, problemView(error));
      return;
    }
    const active = mine.find((a) => a.state === 'active');
    if (active) {
      fill(banner, 'Working in ', h('strong', {}, name), ` under support access ${active.id} (${why(active)})`,
        active.inherited ? ' approved for a parent account' : '', ' until ', h('strong', { class: 'time' }, showTime(active.ends_at)),
        '. Every action is audited with this access.');
      return;
    }
    const pending = mine.find((a) => a.state === 'pending');
    banner.className = 'banner warn';
    banner.setAttribute('role', 'alert');
    fill(banner, `You have no approved support access to ${name}, so the gateway refuses your calls here. `,
      pending ? `Your request (${pending.purpose}) waits for the account admin's approval.` : 'Request access on the Staff page.',
      ' ', h('a', { href: '#/staff', class: 'link' }, 'Staff page'));
  })();
  return banner;
}

export async function render(view, ctx) {
  const { user } = ctx;
  const forms = [];
  if (user.role === 'support') forms.push(await requestForm(ctx));
  if (user.role === 'tech_support' || user.role === 'platform_admin') forms.push(await caseForm(ctx));
  const mine = h('section', { class: 'box wide-box', id: 'my-access' });
  fill(view, h('div', { class: 'page-head' }, h('h1', {}, 'Staff')),
    h('p', { class: 'muted' }, 'Staff work in an account only under support access: approved by its admin for a while, or a support case for tech support.'),
    h('div', { class: 'boxes' }, forms), mine);
  await accessList(mine, ctx);
}

async function requestForm(ctx) {
  const account = await accountSelect({ id: 'request-account', label: 'Account', selected: ctx.account, blank: 'Choose an account' });
  const purpose = h('input', { id: 'request-purpose', placeholder: 'Why, for the account admin', 'aria-label': 'Purpose', required: true });
  const duration = h('select', { id: 'request-duration', 'aria-label': 'Duration' }, DURATIONS.map(([v, l]) => h('option', { value: v }, l)));
  const problems = h('div', {});
  const form = h('form', { class: 'box', id: 'request-form' }, h('h2', {}, 'Request access'),
    field('Account', account), field('Purpose', purpose), field('For', duration), problems,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'request-access' }, 'Request access')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    try {
      await api('POST', '/v1/support-access/requests', { account_id: account.value, purpose: purpose.value.trim(), duration: duration.value });
    } catch (error) {
      problems.append(problemView(error));
      return;
    }
    ctx.notify(`Requested ${duration.selectedOptions[0].textContent} of access to ${account.selectedOptions[0].textContent}; its admin decides.`);
    ctx.showAccess(account.value);
  });
  return form;
}

async function caseForm(ctx) {
  const platform = ctx.user.role === 'platform_admin';
  const account = await accountSelect({ id: 'case-account', label: 'Account', selected: ctx.account, blank: 'Choose an account' });
  const ticket = h('input', { id: 'case-ticket', placeholder: 'Ticket id', 'aria-label': 'Ticket id', required: true });
  const staff = platform ? await staffSelect({ id: 'case-staff', role: 'tech_support', label: 'Tech support member' }) : null;
  const problems = h('div', {});
  const form = h('form', { class: 'box', id: 'case-form' }, h('h2', {}, 'Open a support case'),
    h('p', { class: 'muted' }, platform ? 'The tech support member named gets access at once, until the case closes (at most 3 months).'
      : 'You get access at once, until the case closes (at most 3 months).'),
    field('Account', account), field('Ticket', ticket), staff ? field('For', staff) : null, problems,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'open-case' }, 'Open case')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    let opened;
    try {
      opened = await api('POST', '/v1/support-cases', { account_id: account.value, ticket_id: ticket.value.trim(), staff_id: staff ? staff.value : undefined });
    } catch (error) {
      problems.append(problemView(error));
      return;
    }
    ctx.notify(`Opened case ${opened.ticket_id} in ${account.selectedOptions[0].textContent}: access until ${showTime(opened.ends_at)}.`);
    ctx.showAccess(account.value);
  });
  return form;
}

const ROLE_WORDS = { platform_admin: 'Platform admin', support: 'Support', tech_support: 'Tech support' };

// A picker of staff members by name (the gateway's refusal in words if it cannot list).
async function staffSelect({ id, role, label }) {
  const select = h('select', { id, 'aria-label': label, required: true });
  try {
    // A disabled member cannot be named for a case (the gateway refuses it): not offered.
    const members = (await everything('/v1/staff', { role: role || null })).filter((m) => !m.disabled);
    fill(select, h('option', { value: '' }, members.length ? 'Choose a staff member' : 'No tech support member yet'),
      members.map((m) => h('option', { value: m.id }, `${m.name} (${m.id})`)));
  } catch (error) {
    return h('div', {}, problemView(error));
  }
  return select;
}

function field(label, control) {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}

// The platform admin holds no access of its own: it sees the support cases of one account
// it picks, and closes them. Other staff see their own access (myAccess).
async function accessList(el, ctx) {
  if (ctx.user.role !== 'platform_admin') return myAccess(el, ctx);
  const account = await accountSelect({ id: 'access-account', label: 'Account', selected: ctx.account, blank: 'Choose an account' });
  const list = h('div', { id: 'access-list' });
  fill(el, h('header', { class: 'box-head' }, h('h2', {}, 'Support cases'),
    h('label', { class: 'inline' }, h('span', {}, 'Account'), account)), list);
  const load = async () => {
    if (!account.value) { fill(list, h('p', { class: 'muted' }, 'Choose an account to see its support cases.')); return; }
    let items;
    try {
      items = (await accessesOf(account.value, null)).filter((a) => a.ticket_id);
    } catch (error) {
      fill(list, problemView(error));
      return;
    }
    if (!items.length) { fill(list, h('p', { class: 'empty', id: 'no-access' }, 'No support case here.')); return; }
    fill(list, h('table', { class: 'grid', id: 'access-table' },
      h('thead', {}, h('tr', {}, ['Why', 'Who', 'State', 'When', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((a) => h('tr', { 'data-id': a.id, 'data-state': a.state },
        h('td', {}, why(a), a.inherited ? h('small', {}, ' (approved for a parent account)') : null),
        h('td', {}, a.staff_name || a.staff_id),
        h('td', {}, stateTag(a)),
        h('td', { class: 'time' }, when(a)),
        h('td', { class: 'row-actions' }, a.state === 'active'
          ? h('button', { type: 'button', class: 'secondary', 'data-test': 'close-case', onclick: () => closeCase(ctx, a, load) }, 'Close case')
          : null))))));
  };
  account.addEventListener('change', load);
  ctx.showAccess = (id) => { account.value = id; load(); };
  await load();
}

function stateTag(a) {
  return h('span', { class: `tag ${a.state === 'active' ? 'ok' : a.state === 'pending' ? '' : 'bad'}` }, STATES[a.state] || a.state);
}

// The caller's own access in every account, one list (GET /v1/support-access/mine,
// filtered by state), with "Work here" on an active one and "Close case" on an open case.
async function myAccess(el, ctx) {
  const filter = h('select', { id: 'mine-state', 'aria-label': 'State' },
    [['', 'Every state'], ['pending', 'Waiting'], ['active', 'Active'], ['archived', 'Archived']].map(([v, l]) => h('option', { value: v }, l)));
  const list = h('div', { id: 'access-list' });
  fill(el, h('header', { class: 'box-head' }, h('h2', {}, 'My access'),
    h('label', { class: 'inline' }, h('span', {}, 'Show'), filter)), list);
  const load = async () => {
    let items;
    let names;
    try {
      items = await mine(filter.value);
      names = new Map((await readableAccounts()).map((a) => [a.id, a.name]));
    } catch (error) {
      fill(list, problemView(error));
      return;
    }
    if (!items.length) { fill(list, h('p', { class: 'empty', id: 'no-access' }, 'No support access yet.')); return; }
    fill(list, h('table', { class: 'grid', id: 'access-table' },
      h('thead', {}, h('tr', {}, ['Account', 'Why', 'State', 'When', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((a) => h('tr', { 'data-id': a.id, 'data-state': a.state },
        h('td', {}, names.get(a.account_id) || a.account_id),
        h('td', {}, why(a)),
        h('td', {}, stateTag(a)),
        h('td', { class: 'time' }, when(a)),
        h('td', { class: 'row-actions' }, a.state === 'active' ? [
          h('button', { type: 'button', class: 'primary', 'data-test': 'work-here', onclick: () => ctx.workIn(a.account_id) }, 'Work here'),
          a.ticket_id ? h('button', { type: 'button', class: 'secondary', 'data-test': 'close-case', onclick: () => closeCase(ctx, a, load) }, 'Close case') : null,
        ] : null))))));
  };
  filter.addEventListener('change', load);
  ctx.showAccess = () => load();
  await load();
}

// Every page of the caller's own access (in one list, when given).
async function mine(state) {
  const out = [];
  let cursor = null;
  do {
    const page = await api('GET', withQuery('/v1/support-access/mine', { state, cursor, limit: 1000 }));
    out.push(...page.items);
    cursor = page.next_cursor || null;
  } while (cursor);
  return out;
}

async function closeCase(ctx, a, reload) {
  const yes = await confirmDialog({
    title: `Close case ${a.ticket_id}`, confirm: 'Close case', danger: true,
    body: h('p', {}, `${a.staff_name || a.staff_id} loses access to this account now; their sessions and live streams there end.`),
  });
  if (!yes) return;
  try {
    await api('POST', `/v1/support-cases/${encodeURIComponent(a.id)}/close`);
    ctx.notify(`Closed case ${a.ticket_id}.`);
  } catch (error) {
    document.getElementById('access-list').prepend(problemView(error));
    return;
  }
  reload();
}

function when(a) {
  if (a.state === 'pending') return `requested ${showTime(a.requested_at)}`;
  if (a.state === 'active') return `until ${showTime(a.ends_at)}`;
  const ended = a.ended_at || a.decided_at;
  return ended ? `${STATES[a.state]} ${showTime(ended)}` : '';
}

// A staff member's buttons on the platform admin's page: disable or enable, rotate the
// token (shown once), delete; each asks first and shows the gateway's refusal in its words
// (the last enabled platform admin is kept).
function memberActions(m, { ctx, problems, reload }) {
  const button = (test, label, style, onclick) => h('button', { type: 'button', class: style, 'data-test': test, onclick }, label);
  const path = `/v1/staff/${encodeURIComponent(m.id)}`;
  // One call after a confirm; the answer, or null when not made.
  const act = async (words, method, suffix, body) => {
    const yes = await confirmDialog({ title: words.title, body: h('p', {}, words.body), confirm: words.confirm, danger: words.danger });
    if (!yes) return null;
    problems.replaceChildren();
    let answer;
    try {
      answer = await api(method, `${path}${suffix}`, body);
    } catch (error) {
      problems.append(problemView(error));
      return null;
    }
    ctx.notify(words.done);
    reload();
    return answer || {};
  };
  const ends = 'their token stops working, their console sessions and live streams end, and their support access is revoked (pending requests declined)';
  const rotate = async () => {
    const answer = await act({ title: 'Rotate token', confirm: 'Rotate', danger: true, done: `Rotated the token of ${m.name}.`,
      body: `${m.name}'s API token stops working now and their console sessions end; they sign in with the new one.` }, 'POST', '/token');
    if (answer) showSecret({ title: `New token for ${m.name}`, what: 'The new API token, shown this once:', secret: answer.token });
  };
  return [
    m.disabled ? null : button('rotate-staff', 'Rotate token', 'secondary', rotate),
    m.disabled
      ? button('enable-staff', 'Enable', 'secondary', () => act({ title: 'Enable staff member', confirm: 'Enable', done: `Enabled ${m.name}.`,
        body: `${m.name} may work again once given a new token (Rotate token).` }, 'PATCH', '', { disabled: false }))
      : button('disable-staff', 'Disable', 'danger', () => act({ title: 'Disable staff member', confirm: 'Disable', danger: true,
        done: `Disabled ${m.name}.`, body: `${m.name} loses access now: ${ends}.` }, 'PATCH', '', { disabled: true })),
    button('delete-staff', 'Delete', 'link danger', () => act({ title: 'Delete staff member', confirm: 'Delete', danger: true,
      done: `Deleted ${m.name}.`, body: `${m.name} is deleted: ${ends}. What they did stays in the audit log.` }, 'DELETE', '')),
  ];
}

// The platform admin's page: every organization and account, new ones, and staff members
// (disabled, enabled, re-tokened or deleted there).
export async function renderPlatform(view, ctx) {
  const list = h('div', { id: 'accounts-list' });
  const name = h('input', { id: 'new-account-name', placeholder: 'Name', 'aria-label': 'Account name', required: true });
  const parent = await accountSelect({ id: 'new-account-parent', label: 'Parent', blank: 'No parent: a new organization' });
  const accountForm = h('form', { class: 'toolbar', id: 'new-account' }, name, parent,
    h('button', { type: 'submit', class: 'primary', id: 'create-account' }, 'Create account'));
  const staffName = h('input', { id: 'new-staff-name', placeholder: 'Name', 'aria-label': 'Staff name', required: true });
  const staffRole = h('select', { id: 'new-staff-role', 'aria-label': 'Staff role' },
    [['support', 'Support'], ['tech_support', 'Tech support'], ['platform_admin', 'Platform admin']].map(([v, l]) => h('option', { value: v }, l)));
  const staffForm = h('form', { class: 'toolbar', id: 'new-staff' }, staffName, staffRole,
    h('button', { type: 'submit', class: 'primary', id: 'create-staff' }, 'Add staff member'));
  const staffFilter = h('select', { id: 'staff-role-filter', 'aria-label': 'Staff role' },
    [['', 'Every role'], ...Object.entries(ROLE_WORDS)].map(([v, l]) => h('option', { value: v }, l)));
  const staffList = h('div', { id: 'staff-list' });
  const staffProblems = h('div', { id: 'staff-problems' });
  const loadStaff = async () => {
    try {
      const members = await everything('/v1/staff', { role: staffFilter.value || null });
      const manage = { ctx, problems: staffProblems, reload: loadStaff };
      fill(staffList, h('table', { class: 'grid', id: 'staff-table' },
        h('thead', {}, h('tr', {}, ['Name', 'Role', 'Id', 'State', 'Created', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, members.map((m) => h('tr', { 'data-id': m.id, class: m.disabled ? 'disabled' : null },
          h('td', {}, m.name), h('td', {}, ROLE_WORDS[m.role] || m.role), h('td', {}, h('code', {}, m.id)),
          h('td', {}, m.disabled ? h('span', { class: 'tag bad' }, `disabled ${showTime(m.disabled_at)}`) : h('span', { class: 'tag ok' }, 'active')),
          h('td', { class: 'time' }, showTime(m.created_at)),
          h('td', { class: 'row-actions' }, memberActions(m, manage)))))));
    } catch (error) {
      fill(staffList, problemView(error));
    }
  };
  staffFilter.addEventListener('change', loadStaff);
  const problems = h('div', { id: 'platform-problems' });
  fill(view, h('div', { class: 'page-head' }, h('h1', {}, 'Platform')), problems,
    h('h2', {}, 'Accounts'), accountForm, list, h('h2', {}, 'Staff'),
    h('p', { class: 'muted' }, 'Support staff request access to accounts; tech support get it from support cases.'), staffForm,
    h('label', { class: 'inline' }, h('span', {}, 'Show'), staffFilter), staffProblems, staffList);

  const load = async () => {
    try {
      const all = await readableAccounts({ fresh: true });
      fill(list, h('table', { class: 'grid', id: 'accounts-table' },
        h('thead', {}, h('tr', {}, ['Account', 'Id', 'Created'].map((t) => h('th', {}, t)))),
        h('tbody', {}, all.map((a) => h('tr', { 'data-id': a.id },
          h('td', {}, accountLabel(a, all)), h('td', {}, h('code', {}, a.id)), h('td', { class: 'time' }, showTime(a.created_at)))))));
    } catch (error) {
      fill(list, problemView(error));
    }
  };
  accountForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    try {
      const made = await api('POST', '/v1/accounts', { name: name.value.trim(), parent_id: parent.value || undefined });
      ctx.notify(`Created account ${made.name} (${made.id}).`);
    } catch (error) {
      problems.append(problemView(error));
      return;
    }
    forgetAccounts();
    ctx.reload();
  });
  staffForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    try {
      const made = await api('POST', '/v1/staff', { name: staffName.value.trim(), role: staffRole.value });
      ctx.notify(`Added ${staffName.value.trim()} (${made.id}) to the staff.`);
      showSecret({ title: `Staff member ${made.id} added`, what: 'Their API token, shown this once (they sign in with it, then set a password):', secret: made.token });
      staffName.value = '';
    } catch (error) {
      problems.append(problemView(error));
    }
    loadStaff();
  });
  await Promise.all([load(), loadStaff()]);
}
