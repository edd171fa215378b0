// Flow 3's profiles page: the account's details-sharing profiles (which fields of an asset
// a details share copies, rule 5), a new profile, and a profile's fields changed. An
// account admin's page; the gateway refuses anyone else and the console shows its words.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, problemView } from './dom.js';

// Rule 5's fields, in the order the gateway names them, with the words a person reads.
export const FIELDS = [
  ['name', 'Name'], ['serial', 'Serial'], ['counters', 'Counters (hours, distance)'],
  ['groups', 'Groups'], ['working_hours', 'Working hours'], ['service_flags', 'Service flags'],
  ['calibration', 'Calibration'], ['display', 'Display'],
];
const FIELD_WORDS = new Map(FIELDS);

export async function render(view, ctx) {
  const list = h('div', { id: 'profile-list' });
  const formArea = h('div', { id: 'profile-form-area' });
  const problems = h('div', { class: 'problem-area', id: 'profile-problems' });
  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Sharing profiles'),
      h('button', { type: 'button', class: 'primary', id: 'new-profile', onclick: () => openForm(null) }, 'New profile')),
    h('p', { class: 'muted' }, 'A profile names the details of an asset that details sharing copies to another tenant. Pick one on an asset\'s Sharing tab.'),
    formArea, problems, list);

  // The form for a new profile (profile null) or for the fields of one.
  function openForm(profile) {
    const name = h('input', { id: 'profile-name', value: profile ? profile.name : '', disabled: Boolean(profile), required: true });
    const boxes = FIELDS.map(([field, label]) => h('label', { class: 'inline' },
      h('input', { type: 'checkbox', name: 'field', value: field, 'data-field': field, checked: profile ? profile.fields.includes(field) : false }),
      label));
    const area = h('div', { class: 'problem-area' });
    const form = h('form', { class: 'panel edit-form', id: 'profile-form' },
      h('h2', {}, profile ? `Fields of ${profile.name}` : 'New profile'),
      h('label', { class: 'field' }, h('span', {}, 'Name'), name),
      h('fieldset', { class: 'field' }, h('legend', {}, 'Fields copied'), boxes),
      area,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'profile-discard', onclick: () => formArea.replaceChildren() }, 'Discard'),
        h('button', { type: 'submit', class: 'primary', id: 'profile-save' }, 'Save')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const fields = [...form.querySelectorAll('input[name=field]:checked')].map((box) => box.value);
      try {
        if (profile) {
          await api('PATCH', `/v1/sharing-profiles/${encodeURIComponent(profile.id)}`, { fields });
          ctx.notify(`Profile ${profile.name} saved: ${fields.length} fields.`);
        } else {
          const created = await api('POST', withQuery('/v1/sharing-profiles', { account_id: ctx.account }),
            { name: name.value.trim(), fields });
          ctx.notify(`Profile ${created.name} created.`);
        }
      } catch (error) {
        fill(area, problemView(error));
        return;
      }
      formArea.replaceChildren();
      load();
    });
    fill(formArea, form);
    (profile ? boxes[0].querySelector('input') : name).focus();
  }

  async function load() {
    let items;
    try {
      items = (await api('GET', withQuery('/v1/sharing-profiles', { account_id: ctx.account, limit: 1000 }))).items;
    } catch (error) {
      fill(list, problemView(error));
      return;
    }
    if (!items.length) {
      fill(list, h('p', { class: 'empty', id: 'no-profiles' }, 'No profile yet.'));
      return;
    }
    fill(list, h('table', { class: 'grid', id: 'profiles-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Fields copied'), h('th', {}, ''))),
      h('tbody', {}, items.map((profile) => h('tr', { 'data-id': profile.id },
        h('td', {}, h('strong', {}, profile.name)),
        h('td', {}, profile.fields.map((f) => FIELD_WORDS.get(f) || f).join(', ')),
        h('td', { class: 'row-actions' }, h('button', {
          type: 'button', class: 'secondary', 'data-test': 'edit-profile', onclick: () => openForm(profile),
        }, 'Edit fields'), h('button', {
          type: 'button', class: 'link danger', 'data-test': 'delete-profile', onclick: () => remove(profile),
        }, 'Delete')))))));
  }

  // Deleted after a confirm; the gateway refuses a profile details shares still use and
  // names them (source asset, target account and asset).
  async function remove(profile) {
    problems.replaceChildren();
    const yes = await confirmDialog({
      title: 'Delete profile',
      body: `Profile ${profile.name} will be deleted. A profile that details sharing still uses is kept: stop those shares first.`,
      confirm: 'Delete', danger: true,
    });
    if (!yes) return;
    try {
      await api('DELETE', `/v1/sharing-profiles/${encodeURIComponent(profile.id)}`);
      ctx.notify(`Deleted profile ${profile.name}.`);
    } catch (error) {
      fill(problems, problemView(error));
      return;
    }
    load();
  }

  await load();
}
