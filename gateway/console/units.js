// Flow 6, a unit's life on the Devices page, for admins and fleet admins (rule 1): register
// it (its id and what its hardware has fitted), change what is fitted, give it a new
// certificate (after a revoke, or to rotate its key) and deregister it. A certificate's
// private key is the gateway's to hand out once: it is shown in a dialog with downloads
// and a plain warning, and never kept by the console.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, modal, problemView } from './dom.js';
import { showTime } from './time.js';

export const CAPABILITIES = [['keypad', 'Keypad'], ['bluetooth_relay', 'Bluetooth relay'], ['dualid', 'DualID reader']];

// The capability checkboxes, ticked as `current` says; read them back with capabilitiesOf.
function capabilityFields(current = {}) {
  return h('fieldset', { class: 'field', id: 'unit-capabilities' },
    h('legend', {}, 'Fitted hardware'),
    CAPABILITIES.map(([key, label]) => h('label', { class: 'inline' },
      h('input', { type: 'checkbox', name: key, checked: Boolean(current[key]) }), label)));
}

function capabilitiesOf(fieldset) {
  return Object.fromEntries(CAPABILITIES.map(([key]) => [key, fieldset.querySelector(`input[name="${key}"]`).checked]));
}

// "Register a unit": the id and its fitted hardware; the answer's certificate, key and CA
// are shown once. done() reloads the page's lists.
export function openRegister(ctx, done) {
  const id = h('input', { id: 'unit-id', required: true, autocomplete: 'off', 'aria-describedby': 'unit-id-help' });
  const fitted = capabilityFields();
  const problems = h('div', { id: 'register-problems' });
  const form = h('form', { id: 'register-form' },
    h('h2', {}, 'Register a unit'),
    h('label', { class: 'field' }, h('span', {}, 'Device id'), id,
      h('small', { class: 'muted', id: 'unit-id-help' }, 'Letters and digits only: it is the unit\'s MQTT client id and tenant. An id is used once, ever.')),
    fitted, problems,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', id: 'register-submit' }, 'Register')));
  const dialog = modal(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    let answer;
    try {
      answer = await api('POST', withQuery('/v1/devices', { account_id: ctx.account }),
        { id: id.value.trim(), capabilities: capabilitiesOf(fitted) });
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return;
    }
    dialog.close();
    ctx.notify(`Registered the unit ${answer.id}.`);
    done();
    showCredentials({ title: `Unit ${answer.id} registered`, device: answer.id, answer });
  });
  id.focus();
}

// The certificate, private key and CA of one issuance, shown once with a download each
// (a Blob behind an object URL: nothing inline, so the page's policy holds).
export function showCredentials({ title, device, answer }) {
  const urls = [];
  const file = (label, name, text, fieldId) => {
    const url = URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' }));
    urls.push(url);
    return h('div', { class: 'pem' },
      h('div', { class: 'box-head' }, h('strong', {}, label),
        h('a', { class: 'button secondary', href: url, download: name, id: `download-${fieldId}` }, `Download ${name}`)),
      h('textarea', { id: `pem-${fieldId}`, class: 'secret', readonly: true, rows: 4, 'aria-label': label }, text));
  };
  const dialog = modal(
    h('h2', {}, title),
    answer.key_pem ? h('p', { class: 'problem', role: 'alert', id: 'key-once' },
      h('strong', {}, 'The private key is shown only this once.'),
      ' The gateway does not keep it: download it now and put it on the unit. If it is lost, give the unit a new certificate.') : null,
    h('p', { class: 'muted' }, 'The unit connects over MQTT with TLS, presenting this certificate and key, and checks the gateway against the CA.'),
    file('Certificate', `${device}.pem`, answer.cert_pem, 'cert'),
    answer.key_pem ? file('Private key', `${device}.key`, answer.key_pem, 'key') : null,
    file('Gateway CA', 'ca.pem', answer.ca_pem, 'ca'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', id: 'credentials-done', onclick: () => dialog.close() }, 'I have saved them')));
  // Closed for good: the key leaves the page with the dialog.
  dialog.addEventListener('close', () => urls.forEach((url) => URL.revokeObjectURL(url)));
  return dialog;
}

// The row actions of one unit: fitted hardware, a new certificate, deregister.
export function unitActions(unit, ctx, done) {
  return h('td', { class: 'row-actions' },
    h('button', { type: 'button', class: 'secondary', 'data-test': 'edit-capabilities', onclick: () => editCapabilities(unit, ctx, done) }, 'Hardware'),
    ctx.issuesKeys ? h('button', { type: 'button', class: 'secondary', 'data-test': 'new-certificate', onclick: () => newCertificate(unit, ctx, done) }, 'New certificate') : null,
    h('button', { type: 'button', class: 'danger', 'data-test': 'deregister', onclick: () => deregister(unit, ctx, done) }, 'Deregister'));
}

// PATCH /v1/devices/{d}: refused (409) while a live key of its asset needs a capability
// being removed; the gateway's answer names those keys, shown in the dialog.
function editCapabilities(unit, ctx, done) {
  const fitted = capabilityFields(unit.capabilities);
  const problems = h('div', { id: 'capabilities-problems' });
  const form = h('form', { id: 'capabilities-form' },
    h('h2', {}, `Fitted hardware of ${unit.id}`),
    h('p', { class: 'muted' }, 'Keys are delivered to a unit in the forms its hardware reads: a keypad key needs a keypad, a DualID key a DualID reader, a phone key the Bluetooth relay.'),
    fitted, problems,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', id: 'capabilities-save' }, 'Save')));
  const dialog = modal(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    try {
      await api('PATCH', `/v1/devices/${encodeURIComponent(unit.id)}`, { capabilities: capabilitiesOf(fitted) });
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return;
    }
    dialog.close();
    ctx.notify(`Saved the fitted hardware of ${unit.id}.`);
    done();
  });
}

async function newCertificate(unit, ctx, done) {
  const yes = await confirmDialog({
    title: `New certificate for ${unit.id}`,
    body: [h('p', {}, 'The gateway issues a new certificate and private key for this unit, shown once.'),
      h('p', { class: 'muted' }, 'Its other certificates stay as they are: revoke an old one under Certificates when the unit no longer uses it.')],
    confirm: 'Issue certificate',
  });
  if (!yes) return;
  let answer;
  try {
    answer = await api('POST', `/v1/devices/${encodeURIComponent(unit.id)}/certificate`, {});
  } catch (error) {
    ctx.problem(problemView(error));
    return;
  }
  ctx.notify(`Issued a new certificate for ${unit.id}, valid until ${showTime(answer.not_after)}.`);
  done();
  showCredentials({ title: `New certificate for ${unit.id}`, device: unit.id, answer });
}

async function deregister(unit, ctx, done) {
  const yes = await confirmDialog({
    title: `Deregister ${unit.id}`,
    body: [h('p', {}, `From now on the gateway ignores whatever ${unit.id} sends: its certificates are revoked, its live session closes and its key set empties.`),
      unit.asset_id ? h('p', {}, `The asset ${unit.asset_id} keeps its history and is left without a unit.`) : null,
      h('p', { class: 'muted' }, 'The id cannot be registered again.')],
    confirm: 'Deregister', danger: true,
  });
  if (!yes) return;
  try {
    await api('DELETE', `/v1/devices/${encodeURIComponent(unit.id)}`);
  } catch (error) {
    ctx.problem(problemView(error));
    return;
  }
  ctx.notify(`Deregistered the unit ${unit.id}.`);
  done();
}

// A place on the page for refusals of row actions (they have no dialog of their own).
export function rowProblems() {
  const el = h('div', { id: 'unit-problems' });
  return { el, show: (view) => fill(el, view) };
}
