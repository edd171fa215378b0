// Flow 4, Access Management: the operators (the people keys are for, rule 6) with search
// and paging; create an operator (name mandatory, phone with its country code, access
// type, an SMS invitation) and then assign keys now or later; resend an invitation;
// delete with a confirm; the way to the bulk upload and to an operator's keys. Fleet
// managers only: the gateway refuses a viewer, and the navigation does not offer it one.

import { api, withQuery } from './api.js';
import { fill, h, modal, problemView } from './dom.js';
import { showTime } from './time.js';
import { ACCESS_TYPES, ACCESS_WORDS, openKeyWizard } from './keywizard.js';
import { confirmDelete, loadPage, pagerControls, searchToolbar } from './paging.js';

const LIMIT = 50;

// Country calling codes offered first; any other is typed with its + in the number field.
const COUNTRIES = [
  ['+47', 'Norway +47'], ['+46', 'Sweden +46'], ['+45', 'Denmark +45'], ['+358', 'Finland +358'],
  ['+49', 'Germany +49'], ['+31', 'Netherlands +31'], ['+44', 'United Kingdom +44'],
  ['+33', 'France +33'], ['+34', 'Spain +34'], ['+39', 'Italy +39'], ['+48', 'Poland +48'],
  ['+1', 'United States, Canada +1'], ['+61', 'Australia +61'],
];

// The phone as the gateway takes it: a number typed with its own + stays as typed; else
// the country code goes first and a national trunk 0 is left out. Empty: no phone.
export function phoneOf(countryCode, typed) {
  const number = typed.trim();
  if (!number) return null;
  if (number.startsWith('+')) return number;
  return `${countryCode}${number.replace(/^0+/, '')}`;
}

function invitationWords(operator) {
  const invitation = operator.invitation;
  if (!invitation) return operator.phone ? 'not invited' : 'no phone';
  if (invitation.state === 'sent') return `sent ${showTime(invitation.sent_at)}`;
  return `queued ${showTime(invitation.queued_at)}`;
}

export async function render(view, ctx) {
  const state = { q: '', cursors: [null], page: 0, items: [] };
  const toolbar = searchToolbar(state, () => load(), {
    input: { id: 'operator-search', placeholder: 'Search by name or phone', 'aria-label': 'Search operators' },
    button: 'search-operators',
  });
  const list = h('div', { id: 'operator-list' });
  const problems = h('div', { class: 'problem-area', id: 'operator-problems' });
  const pager = h('div', { class: 'pager' });
  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Operators'),
      h('div', { class: 'actions' },
        h('a', { href: '#/operators-import', class: 'button secondary', id: 'bulk-upload' }, 'Bulk upload'),
        h('button', { type: 'button', class: 'primary', id: 'create-operator', onclick: () => openCreate(ctx, load) }, 'Create operator'))),
    toolbar, problems, list, pager);

  const load = () => loadPage(list, state, '/v1/operators', { account_id: ctx.account, q: state.q, limit: LIMIT }, draw);

  function draw() {
    fill(list, state.items.length ? h('table', { class: 'grid', id: 'operators-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Phone'), h('th', {}, 'Access type'),
        h('th', {}, 'SMS invitation'), h('th', {}, 'Created'), h('th', {}, ''))),
      h('tbody', {}, state.items.map((operator) => h('tr', { 'data-id': operator.id },
        h('td', {}, h('strong', {}, operator.name)),
        h('td', {}, operator.phone || '—'),
        h('td', {}, ACCESS_WORDS.get(operator.access_type) || '—'),
        h('td', { class: 'time' }, invitationWords(operator)),
        h('td', { class: 'time' }, showTime(operator.created_at)),
        h('td', { class: 'row-actions' },
          h('a', { href: `#/keys/operator/${encodeURIComponent(operator.id)}`, class: 'button secondary', 'data-test': 'operator-keys' }, 'Keys'),
          h('button', { type: 'button', class: 'secondary', 'data-test': 'edit-operator', onclick: () => openEdit(ctx, operator, load) }, 'Edit'),
          operator.phone ? h('button', {
            type: 'button', class: 'secondary', 'data-test': 'resend', onclick: () => resend(operator),
          }, operator.invitation ? 'Resend invitation' : 'Send invitation') : null,
          h('button', { type: 'button', class: 'link danger', 'data-test': 'delete-operator', onclick: () => remove(operator) }, 'Delete'))))))
      : h('p', { class: 'empty', id: 'no-operators' }, state.q ? 'No operator matches.' : 'No operators yet.'));
    fill(pager, pagerControls(state, load));
  }

  async function resend(operator) {
    problems.replaceChildren();
    try {
      await api('POST', `/v1/operators/${encodeURIComponent(operator.id)}/invitation`);
      ctx.notify(`An SMS invitation to ${operator.name} (${operator.phone}) is on its way.`);
    } catch (error) {
      fill(problems, problemView(error));
      return;
    }
    load();
  }

  function remove(operator) {
    return confirmDelete({
      problems, load, notify: ctx.notify,
      title: 'Delete operator',
      body: `${operator.name} will be deleted, with any invitation still waiting.`,
      path: `/v1/operators/${encodeURIComponent(operator.id)}`,
      done: `Deleted operator ${operator.name}.`,
    });
  }

  draw();
  await load();
}

// The "Edit operator" dialog: name, phone and access type (PATCH /v1/operators/{id}; an
// empty phone or "Not chosen" takes it away). The gateway checks the phone as on create.
function openEdit(ctx, operator, changed) {
  const form = {
    name: h('input', { id: 'edit-operator-name', value: operator.name, maxlength: 200, autocomplete: 'off' }),
    phone: h('input', { id: 'edit-operator-phone', type: 'tel', value: operator.phone || '', placeholder: '+4791234567', autocomplete: 'off' }),
    access: h('select', { id: 'edit-operator-access' }, h('option', { value: '' }, 'Not chosen'),
      ACCESS_TYPES.map(([value, label]) => h('option', { value }, label))),
  };
  form.access.value = operator.access_type || '';
  const area = h('div', { class: 'problem-area' });
  const el = h('form', {},
    h('h2', {}, `Edit ${operator.name}`),
    h('label', { class: 'field' }, h('span', {}, 'Name (mandatory)'), form.name),
    h('label', { class: 'field' }, h('span', {}, 'Phone, with its country code (+47…), or empty for none'), form.phone),
    h('label', { class: 'field' }, h('span', {}, 'Access type'), form.access),
    area,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', id: 'operator-save' }, 'Save')));
  const dialog = modal(el);
  dialog.id = 'edit-operator-dialog';
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    area.replaceChildren();
    const patch = { name: form.name.value.trim(), phone: form.phone.value.trim() || null, access_type: form.access.value || null };
    let saved;
    try {
      saved = await api('PATCH', `/v1/operators/${encodeURIComponent(operator.id)}`, patch);
    } catch (error) {
      fill(area, problemView(error));
      return;
    }
    dialog.close();
    ctx.notify(`Saved operator ${saved.name}.`);
    changed();
  });
  form.name.focus();
}

// The "Create operator" dialog; after a create it asks to assign keys now or later.
function openCreate(ctx, changed) {
  const form = {
    name: h('input', { id: 'operator-name', maxlength: 200, autocomplete: 'off' }),
    country: h('select', { id: 'operator-country', 'aria-label': 'Country code' },
      COUNTRIES.map(([code, label]) => h('option', { value: code }, label))),
    phone: h('input', { id: 'operator-phone', type: 'tel', placeholder: '912 34 567', autocomplete: 'off' }),
    access: h('select', { id: 'operator-access' }, h('option', { value: '' }, 'Not chosen'),
      ACCESS_TYPES.map(([value, label]) => h('option', { value }, label))),
    invite: h('input', { type: 'checkbox', id: 'operator-invite' }),
  };
  const area = h('div', { class: 'problem-area' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'operator-create' }, 'Create');
  const el = h('form', {},
    h('h2', {}, 'Create operator'),
    h('label', { class: 'field' }, h('span', {}, 'Name (mandatory)'), form.name),
    h('div', { class: 'field' }, h('span', {}, 'Phone'),
      h('div', { class: 'inline' }, form.country, form.phone),
      h('small', {}, 'Pick the country code, or type the whole number starting with +.')),
    h('label', { class: 'field' }, h('span', {}, 'Access type'), form.access),
    h('label', { class: 'inline' }, form.invite, 'Send an SMS invitation to this phone'),
    area,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
      submit));
  const dialog = modal(el);
  dialog.id = 'operator-dialog';
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    area.replaceChildren();
    const phone = phoneOf(form.country.value, form.phone.value);
    if (!form.name.value.trim()) {
      fill(area, problemView(new Error('The name is mandatory.')));
      return;
    }
    if (form.invite.checked && !phone) {
      fill(area, problemView(new Error('An SMS invitation needs a phone.')));
      return;
    }
    const payload = { name: form.name.value.trim(), phone, access_type: form.access.value || null, send_sms_invite: form.invite.checked };
    submit.disabled = true;
    let created;
    try {
      created = await api('POST', withQuery('/v1/operators', { account_id: ctx.account }), payload);
    } catch (error) {
      fill(area, problemView(error));
      submit.disabled = false;
      return;
    }
    changed();
    askForKeys(dialog, created, ctx);
  });
  form.name.focus();
}

// The second step of creating an operator: assign keys now (the key wizard, personal, for
// this operator) or later.
function askForKeys(dialog, operator, ctx) {
  const invited = operator.invitation ? ` An SMS invitation to ${operator.phone} is queued.` : '';
  fill(dialog,
    h('h2', {}, 'Operator created'),
    h('p', { id: 'operator-created' }, `${operator.name} is created.${invited}`),
    h('p', {}, 'Assign keys to this operator now, or later from the Keys page.'),
    h('div', { class: 'actions' },
      h('button', {
        type: 'button', class: 'secondary', id: 'keys-later',
        onclick: () => { dialog.close(); ctx.notify(`Created operator ${operator.name}.${invited}`); },
      }, 'Later'),
      h('button', {
        type: 'button', class: 'primary', id: 'keys-now',
        onclick: () => {
          dialog.close();
          openKeyWizard({ ctx, operator, done: () => { location.hash = `#/keys/operator/${encodeURIComponent(operator.id)}`; } });
        },
      }, 'Assign keys now')));
}
