// The console shell: who is signed in, the left navigation, notices, and the hash routes
// (#/assets, #/password, #/set-password/<token>). Pages are modules with a render(view, ctx).
// The console decides nothing about rights: it hides what a role cannot use, and shows
// every refusal the gateway answers.

import { api, ApiProblem, onSessionEnd, setCsrf } from './api.js';
import { fill, h, problemView } from './dom.js';
import * as signin from './signin.js';
import * as assets from './assets.js';
import * as support from './support.js';
import * as sharing from './sharing.js';
import * as profiles from './profiles.js';
import * as operators from './operators.js';
import * as upload from './upload.js';
import * as keys from './keys.js';
import * as customers from './customers.js';
import * as live from './live.js';
import * as devices from './devices.js';
import * as admin from './admin.js';
import * as audit from './audit.js';
import * as staff from './staff.js';
import { forgetAccounts, readableAccounts } from './pick.js';

const root = document.getElementById('app');
let session = null; // the body of GET /v1/session
let accountName = null;
let passwordPromptDismissed = false;

// show(user): whether the navigation offers the page to that user (the gateway decides
// whether it answers).
const PAGES = [
  { path: 'assets', title: 'Assets', render: assets.render, show: () => true },
  { path: 'support', title: 'Support access', render: support.render, show: isAccountAdmin },
  // nav: false: reached from another page (an asset's configuration, the bulk upload).
  { path: 'asset-config', title: 'Asset configuration', render: sharing.render, show: () => true, nav: false },
  { path: 'profiles', title: 'Sharing profiles', render: profiles.render, show: administersAccount },
  { path: 'operators', title: 'Operators', render: operators.render, show: canManageFleet },
  { path: 'operators-import', title: 'Bulk upload', render: upload.render, show: canManageFleet, nav: false },
  { path: 'keys', title: 'Keys', render: keys.render, show: canManageFleet },
  { path: 'customers', title: 'Customers', render: customers.render, show: canManageFleet },
  { path: 'live', title: 'Live and history', render: live.render, show: () => true },
  { path: 'devices', title: 'Devices', render: devices.render, show: () => true },
  { path: 'users', title: 'Users', render: admin.renderUsers, show: administersHere },
  { path: 'audit', title: 'Audit log', render: audit.render, show: administersHere },
  { path: 'partnerships', title: 'Partnerships', render: admin.renderPartnerships, show: (u) => isAccountAdmin(u) || u.role === 'platform_admin' },
  { path: 'staff', title: 'Staff', render: staff.render, show: (u) => u.kind === 'staff' },
  { path: 'platform', title: 'Platform', render: staff.renderPlatform, show: (u) => u.role === 'platform_admin' },
];

// Account admins, and staff working in an account under approved access (rule 4 gives
// them admin rights there): who administers tenant sharing and its profiles.
function administersAccount(user) {
  if (user.kind === 'staff') return actingAccount !== null && user.role !== 'platform_admin';
  return user.role === 'admin';
}

// An account's admin, the platform admin, and staff working in an account (support
// access gives admin rights there, rule 4).
function administersHere(user) {
  if (user.kind === 'staff') return user.role === 'platform_admin' || actingAccount !== null;
  return user.role === 'admin';
}

function isAccountAdmin(user) {
  return user.kind === 'user' && user.role === 'admin';
}

// Roles that manage a fleet (rule 1), and support staff working in an account under the
// access its admin approved (rule 4); the server decides, this only hides buttons.
function canManageFleet(user) {
  if (user.kind === 'staff') return actingAccount !== null && user.role !== 'platform_admin';
  return user.role === 'admin' || user.role === 'fleet_admin';
}

// Staff have no home account: they name the account they work in (`?account_id=`).
let actingAccount = null;

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  const [path, ...rest] = hash.split('/');
  if (path === 'set-password' && rest.length) {
    return signin.renderInvitation(root, rest.join('/'));
  }
  if (!session) {
    return signin.renderSignIn(root, { signedIn });
  }
  if (path === 'password') {
    return shell('password', (view) => signin.renderPassword(view, passwordContext()));
  }
  if (!session.password_set && !passwordPromptDismissed) {
    return signin.renderPassword(root, {
      ...passwordContext(),
      first: true,
      later: () => { passwordPromptDismissed = true; route(); },
    });
  }
  const page = PAGES.find((p) => p.path === path && p.show(session.user));
  if (!page) {
    location.replace(home());
    return undefined;
  }
  return shell(page.path, (view) => page.render(view, { ...context(), params: rest }));
}

// Where a user starts: the assets, except for staff not yet working in an account, whose
// work starts on their own page (the asset list would only say they must name an account).
function home() {
  const { user } = session;
  if (user.kind !== 'staff' || actingAccount) return '#/assets';
  return user.role === 'platform_admin' ? '#/platform' : '#/staff';
}

function passwordContext() {
  return {
    passwordSet: session.password_set,
    done: () => {
      session.password_set = true;
      notify(`Your password is set. Sign in next time with your user id, ${session.user.principal_id}, and it.`);
      go(home());
    },
  };
}

// Shows hash (#/assets): through the hashchange listener when it changes, at once when it
// is already the current one (one render either way).
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function context() {
  return {
    user: session.user,
    notify,
    canManageFleet: canManageFleet(session.user),
    administersAccount: administersAccount(session.user),
    // The account the pages work in: the user's own (null: the gateway's default) or the
    // one a staff member named.
    account: session.user.kind === 'staff' ? actingAccount : null,
    // Staff: work in an account they have access to (the Staff page's "Work here").
    workIn: (id) => { actingAccount = id; go('#/assets'); },
    reload: () => route(),
  };
}

function shell(current, render) {
  const { user } = session;
  const notice = h('div', { id: 'notice', class: 'notice-area' });
  const view = h('main', { id: 'page', class: 'page' });
  const where = user.account_id ? (accountName || user.account_id) : 'platform staff';
  fill(root, h('div', { class: 'shell' },
    h('aside', { class: 'nav' },
      h('div', { class: 'brand' }, h('img', { src: '/console/favicon.svg', alt: '' }), 'Fleetgate'),
      h('nav', { 'aria-label': 'Console' },
        PAGES.filter((p) => p.show(user) && p.nav !== false).map((p) => h('a', {
          href: `#/${p.path}`,
          class: p.path === current ? 'active' : null,
          'aria-current': p.path === current ? 'page' : null,
        }, p.title)))),
    h('div', { class: 'main' },
      h('header', { class: 'top' },
        h('span', { class: 'who', id: 'who' },
          h('strong', {}, user.name), ` · ${roleName(user.role)} · ${where} · `,
          // The id a password sign-in asks for (the platform admin has no other way to see it).
          h('code', { id: 'who-id', title: 'Your user id: sign in with it and your password' }, user.principal_id)),
        user.kind === 'staff' ? actingAccountForm() : null,
        h('a', { href: '#/password', class: 'link' }, 'Password'),
        h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: signOut }, 'Sign out')),
      user.kind === 'staff' && actingAccount ? staff.staffBanner(user, actingAccount) : null,
      notice,
      view)));
  shownPages += 1;
  showPendingNotice();
  Promise.resolve(render(view)).catch((error) => view.append(problemView(error)));
}

// Staff: the account to work in, by id (what support access was approved for).
function actingAccountForm() {
  const input = h('input', {
    id: 'acting-account', placeholder: 'account id', 'aria-label': 'Account to work in',
    value: actingAccount || '', list: 'account-choices',
  });
  // The accounts staff may pick by name (the field still takes a typed id).
  const choices = h('datalist', { id: 'account-choices' });
  readableAccounts().then((all) => fill(choices, all.map((a) => h('option', { value: a.id }, a.name))), () => {});
  const form = h('form', { class: 'acting' },
    h('span', {}, 'Work in account'), input, choices,
    h('button', { type: 'submit', class: 'secondary', id: 'work-here' }, 'Work here'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    actingAccount = input.value.trim() || null;
    route();
  });
  return form;
}

const ROLE_NAMES = {
  admin: 'Admin', fleet_admin: 'Fleet admin', viewer: 'Viewer',
  platform_admin: 'Platform admin', support: 'Support', tech_support: 'Tech support',
};
function roleName(role) { return ROLE_NAMES[role] || role; }

// The confirmation notice: { text, page, at } (page: the shell it was first shown in).
let pendingNotice = null;
let shownPages = 0; // how many pages the shell has shown: a page change is a new number
// An action that moves to another page when it is done (the key wizard opening the keys
// list, a set password going to the assets) raises its notice just before the move; the
// next page shows it if it comes this soon, and no page after it does.
const NOTICE_CARRIES_MS = 2000;

// A confirmation notice at the top of the page.
function notify(text) {
  pendingNotice = { text, page: shownPages, at: Date.now() };
  showPendingNotice();
}

function showPendingNotice() {
  const area = document.getElementById('notice');
  if (!area || !pendingNotice) return;
  const notice = pendingNotice;
  const carried = notice.page !== shownPages;
  if (carried && (notice.page + 1 !== shownPages || Date.now() - notice.at > NOTICE_CARRIES_MS)) {
    pendingNotice = null;
    return;
  }
  fill(area, h('div', { class: 'notice', role: 'status' },
    h('span', {}, notice.text),
    h('button', {
      type: 'button', class: 'close', 'aria-label': 'Dismiss',
      onclick: () => { pendingNotice = null; area.replaceChildren(); },
    }, '×')));
}

async function signedIn(answer) {
  // The accounts the last user could read are not this user's to see.
  forgetAccounts();
  session = answer;
  setCsrf(answer.csrf_token);
  passwordPromptDismissed = false;
  await loadAccountName();
  const stay = location.hash && location.hash !== '#/' && !location.hash.startsWith('#/set-password');
  go(stay ? location.hash : home());
}

async function loadAccountName() {
  accountName = null;
  if (!session.user.account_id) return;
  try {
    accountName = (await api('GET', `/v1/accounts/${encodeURIComponent(session.user.account_id)}`)).name;
  } catch (_) {
    accountName = null;
  }
}

async function signOut() {
  forgetAccounts();
  try {
    await api('DELETE', '/v1/session');
  } catch (error) {
    if (!(error instanceof ApiProblem && error.status === 401)) {
      document.getElementById('notice').replaceChildren(problemView(error));
      return;
    }
  }
  ended('You are signed out.');
}

function ended(message) {
  session = null;
  actingAccount = null;
  setCsrf(null);
  signin.renderSignIn(root, { signedIn, message });
}

onSessionEnd(() => {
  if (session) ended('Your session has ended. Sign in again.');
});

async function start() {
  window.addEventListener('hashchange', () => route());
  try {
    const answer = await api('GET', '/v1/session', undefined, { anonymous: true });
    session = answer;
    setCsrf(answer.csrf_token);
    await loadAccountName();
  } catch (error) {
    if (!(error instanceof ApiProblem && error.status === 401)) {
      fill(root, h('div', { class: 'center' }, problemView(error)));
      return;
    }
  }
  route();
}

start();
