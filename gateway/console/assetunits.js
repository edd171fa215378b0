// Flow 1's owned assets and their units, for admins and fleet admins (rule 1): create an
// asset (id, name, serial, and a registered unit of the account to put on it), put another
// unit on it or take its unit off from its side panel, and delete it. The gateway decides
// every step; its refusals (a taken id, a unit already on another asset, a key the new unit
// cannot use) are shown in its words.

import { api, withQuery } from './api.js';
import { confirmDialog, h, modal, problemView } from './dom.js';
import { everything } from './paging.js';

// The account's registered units, for pickers: [{id, asset_id}].
async function accountUnits(ctx) {
  return everything('/v1/devices', { account_id: ctx.account });
}

// A <select> of the account's units; a unit already on another asset than `asset` says which.
function unitSelect(id, units, { current = null, asset = null, blank }) {
  return h('select', { id, 'aria-label': 'Unit' },
    h('option', { value: '' }, blank),
    units.map((unit) => h('option', { value: unit.id, selected: unit.id === current },
      unit.asset_id && unit.asset_id !== asset ? `${unit.id} (on ${unit.asset_id})` : unit.id)));
}

// "Create asset": done() reloads the list.
export async function openCreateAsset(ctx, done) {
  const problems = h('div', { id: 'create-asset-problems' });
  let units = [];
  try {
    units = (await accountUnits(ctx)).filter((unit) => !unit.asset_id);
  } catch (error) {
    problems.append(problemView(error));
  }
  const id = h('input', { id: 'new-asset-id', required: true, autocomplete: 'off' });
  const name = h('input', { id: 'new-asset-name', required: true, autocomplete: 'off' });
  const serial = h('input', { id: 'new-asset-serial', autocomplete: 'off' });
  const unit = unitSelect('new-asset-unit', units, { blank: units.length ? 'No unit yet' : 'No free unit: register one on the Devices page' });
  const form = h('form', { id: 'create-asset-form' },
    h('h2', {}, 'Create asset'),
    h('label', { class: 'field' }, h('span', {}, 'Asset id'), id,
      h('small', { class: 'muted' }, 'How this account names the asset in the API and in topics; it cannot change later.')),
    h('label', { class: 'field' }, h('span', {}, 'Name'), name),
    h('label', { class: 'field' }, h('span', {}, 'Serial (optional)'), serial),
    h('label', { class: 'field' }, h('span', {}, 'Unit'), unit,
      h('small', { class: 'muted' }, 'A registered unit of this account that is on no asset yet; its readings become this asset\'s.')),
    problems,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', id: 'create-asset-submit' }, 'Create')));
  const dialog = modal(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    const body = { id: id.value.trim(), name: name.value.trim() };
    if (serial.value.trim()) body.serial = serial.value.trim();
    if (unit.value) body.device_id = unit.value;
    let asset;
    try {
      asset = await api('POST', withQuery('/v1/assets', { account_id: ctx.account }), body);
    } catch (error) {
      problems.replaceChildren(problemView(error));
      return;
    }
    dialog.close();
    ctx.notify(`Created ${asset.name} (${asset.id})${asset.device_id ? ` with the unit ${asset.device_id}` : ''}.`);
    done();
  });
  id.focus();
}

// Distribution words: where the changed key sets reached.
function reached(distribution) {
  if (!distribution) return '';
  const pending = distribution.pending || [];
  return pending.length ? ` ${pending.join(', ')} get their new key sets when they next connect.` : '';
}

// An owned asset's side-panel section: its unit, swap it or take it off, delete the asset.
// changed() reloads the list and the panel; gone() after a delete.
export function assetUnitSection(asset, ctx, { changed, gone }) {
  const problems = h('div', { id: 'asset-unit-problems' });
  const picker = h('div', { class: 'inline' });
  const section = h('div', { id: 'asset-unit' },
    h('h3', {}, 'Unit'),
    picker, problems,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', id: 'delete-asset', onclick: () => remove(asset, ctx, problems, gone) }, 'Delete asset')));
  accountUnits(ctx).then((units) => {
    const select = unitSelect('asset-unit-select', units, { current: asset.device_id || null, asset: asset.id, blank: 'No unit' });
    picker.append(select, h('button', {
      type: 'button', class: 'secondary', id: 'put-unit',
      onclick: () => swap(asset, select.value || null, ctx, problems, changed),
    }, 'Put on this asset'));
  }, (error) => problems.append(problemView(error)));
  return section;
}

async function swap(asset, unit, ctx, problems, changed) {
  problems.replaceChildren();
  if (unit === (asset.device_id || null)) {
    problems.append(h('p', { class: 'muted' }, unit ? `${unit} is already on this asset.` : 'This asset has no unit.'));
    return;
  }
  const yes = await confirmDialog({
    title: unit ? `Put ${unit} on ${asset.name}` : `Take ${asset.device_id} off ${asset.name}`,
    body: [
      asset.device_id ? h('p', {}, `${asset.device_id} stops reporting for this asset and its key set is emptied.`) : null,
      unit ? h('p', {}, `${unit} reports for ${asset.name} from now on and gets the asset's keys.`) : null,
      h('p', { class: 'muted' }, 'The asset keeps its history.')],
    confirm: unit ? 'Put it on' : 'Take it off',
  });
  if (!yes) return;
  let answer;
  try {
    answer = await api('PUT', withQuery(`/v1/assets/${encodeURIComponent(asset.id)}/unit`, { account_id: ctx.account }), { device_id: unit });
  } catch (error) {
    problems.replaceChildren(problemView(error));
    return;
  }
  ctx.notify((unit ? `${unit} now reports for ${asset.name}.` : `${asset.name} has no unit now.`) + reached(answer.distribution));
  changed({ ...asset, device_id: unit });
}

async function remove(asset, ctx, problems, gone) {
  problems.replaceChildren();
  const yes = await confirmDialog({
    title: `Delete ${asset.name}`,
    body: [h('p', {}, `${asset.name} (${asset.id}) is deleted. First, everything that gave access through it ends: its visibility grants, its tenant shares and their mirrors, and its keys.`),
      asset.device_id ? h('p', {}, `Its unit ${asset.device_id} stays registered, on no asset.`) : null,
      h('p', { class: 'muted' }, 'Its history is kept until retention removes it. This cannot be undone.')],
    confirm: 'Delete asset', danger: true,
  });
  if (!yes) return;
  let answer;
  try {
    answer = await api('DELETE', withQuery(`/v1/assets/${encodeURIComponent(asset.id)}`, { account_id: ctx.account }));
  } catch (error) {
    problems.replaceChildren(problemView(error));
    return;
  }
  ctx.notify(`Deleted ${asset.name}; its grants, shares and keys ended.${reached(answer.distribution)}`);
  gone();
}
