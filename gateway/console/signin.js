// Signing in (a user id and password, or an API token such as the bootstrap token), setting
// a password after a token sign-in, and setting one from an admin's invitation link.

import { api } from './api.js';
import { fill, h, problemView } from './dom.js';
import { showTime } from './time.js';

function card(title, ...children) {
  return h('div', { class: 'center' },
    h('div', { class: 'card' },
      h('div', { class: 'brand dark' }, h('img', { src: '/console/favicon.svg', alt: '' }), 'Fleetgate'),
      h('h1', {}, title),
      ...children));
}

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input,
    hint ? h('small', {}, hint) : null);
}

// The sign-in page. signedIn(answer) takes the session the gateway answered.
export function renderSignIn(root, { signedIn, message }) {
  let withToken = false;
  const problem = h('div', { class: 'problem-area' });
  const userId = h('input', { id: 'user-id', name: 'username', autocomplete: 'username', required: true, placeholder: 'usr…' });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off' });
  const passwordFields = h('div', {}, field('User id', userId), field('Password', password));
  const tokenFields = h('div', { hidden: true },
    field('API token', token, 'The platform admin signs in the first time with the token in the data directory\'s bootstrap-token file.'));
  const toggle = h('button', { type: 'button', class: 'link', id: 'use-token' }, 'Sign in with an API token instead');
  const submit = h('button', { type: 'submit', class: 'primary wide', id: 'sign-in' }, 'Sign in');
  toggle.addEventListener('click', () => {
    withToken = !withToken;
    passwordFields.hidden = withToken;
    tokenFields.hidden = !withToken;
    userId.required = !withToken;
    password.required = !withToken;
    token.required = withToken;
    toggle.textContent = withToken ? 'Sign in with a password instead' : 'Sign in with an API token instead';
    (withToken ? token : userId).focus();
  });
  const form = h('form', { class: 'stack', id: 'sign-in-form' },
    message ? h('div', { class: 'info', role: 'status' }, message) : null,
    passwordFields, tokenFields, problem, submit, toggle);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    submit.disabled = true;
    const body = withToken
      ? { token: token.value.trim() }
      : { user_id: userId.value.trim(), password: password.value };
    try {
      const answer = await api('POST', '/v1/session', body, { anonymous: true });
      await signedIn(answer);
    } catch (error) {
      problem.replaceChildren(problemView(error));
      submit.disabled = false;
      password.value = '';
    }
  });
  fill(root, card('Sign in', form));
  userId.focus();
}

function newPasswordFields() {
  const first = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: '12' });
  const again = h('input', { id: 'new-password-again', type: 'password', autocomplete: 'new-password', required: true });
  return {
    first,
    again,
    nodes: [field('New password', first, 'At least 12 characters.'), field('New password again', again)],
    // A mismatch is the one thing only the page can know.
    mismatch: () => (first.value !== again.value ? new Error('The two passwords differ.') : null),
  };
}

// Sets or changes the signed-in user's password. first: asked right after a token sign-in
// (later() skips it for now).
export function renderPassword(root, { passwordSet, done, first = false, later }) {
  const problem = h('div', { class: 'problem-area' });
  const current = h('input', { id: 'current-password', type: 'password', autocomplete: 'current-password', required: true });
  const fresh = newPasswordFields();
  const submit = h('button', { type: 'submit', class: 'primary', id: 'set-password' }, 'Set password');
  const form = h('form', { class: 'stack', id: 'password-form' },
    first ? h('p', {}, 'You signed in with a token. Set a password to sign in with your user id from now on.') : null,
    passwordSet ? field('Current password', current) : null,
    ...fresh.nodes,
    problem,
    h('div', { class: 'actions' },
      later ? h('button', { type: 'button', class: 'secondary', id: 'later', onclick: later }, 'Not now') : null,
      submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const mismatch = fresh.mismatch();
    if (mismatch) {
      problem.replaceChildren(problemView(mismatch));
      return;
    }
    const body = { password: fresh.first.value };
    if (passwordSet) body.current_password = current.value;
    submit.disabled = true;
    try {
      await api('PUT', '/v1/session/password', body);
      done();
    } catch (error) {
      problem.replaceChildren(problemView(error));
      submit.disabled = false;
    }
  });
  if (first) {
    fill(root, card('Set your password', form));
  } else {
    fill(root, h('h1', {}, passwordSet ? 'Change your password' : 'Set your password'), h('div', { class: 'narrow' }, form));
  }
}

// #/set-password/<token>: the one-time link an admin gave a user.
export async function renderInvitation(root, token) {
  fill(root, card('Set your password', h('p', { class: 'muted' }, 'Checking the link…')));
  let invitation;
  try {
    invitation = await api('GET', `/v1/password-invitations/${encodeURIComponent(token)}`, undefined, { anonymous: true });
  } catch (error) {
    const words = error.status === 404
      ? { heading: 'This link does not work.', detail: 'It was used already, has expired or was mistyped. Ask your admin for a new one.' }
      : error;
    fill(root, card('Set your password', problemView(words), h('a', { href: '#/', class: 'link' }, 'Go to sign-in')));
    return;
  }
  const problem = h('div', { class: 'problem-area' });
  const fresh = newPasswordFields();
  const submit = h('button', { type: 'submit', class: 'primary wide', id: 'set-password' }, 'Set password');
  const form = h('form', { class: 'stack', id: 'invitation-form' },
    h('p', {}, 'For ', h('strong', {}, invitation.name), ` (user id `, h('code', { id: 'invited-user-id' }, invitation.user_id),
      `). This link works once, until ${showTime(invitation.expires_at)}.`),
    ...fresh.nodes, problem, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const mismatch = fresh.mismatch();
    if (mismatch) {
      problem.replaceChildren(problemView(mismatch));
      return;
    }
    submit.disabled = true;
    try {
      await api('POST', `/v1/password-invitations/${encodeURIComponent(token)}`, { password: fresh.first.value }, { anonymous: true });
      fill(root, card('Password set',
        h('div', { class: 'info', role: 'status' }, `Your password is set. Sign in with user id ${invitation.user_id} and your new password.`),
        h('a', { href: '#/assets', class: 'button primary wide', id: 'to-sign-in' }, 'Sign in')));
    } catch (error) {
      problem.replaceChildren(problemView(error));
      submit.disabled = false;
    }
  });
  fill(root, card('Set your password', form));
}
