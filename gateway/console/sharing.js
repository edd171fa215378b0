// Flow 3, an asset's configuration with its Sharing tab (rule 5, tenant sharing): the
// telemetry sharing and details sharing sections, each listing its targets (a target
// tenant and the asset id there; details also the profile of fields copied). Edit opens a
// section's form: stop sharing into some targets, add one (target tenant id, target asset
// id, profile), then Save or Discard. Only an account's admin changes tenant sharing: the
// console hides Edit from anyone else, and shows the gateway's words when it refuses.

import { api, withQuery } from './api.js';
import { fill, h, problemView } from './dom.js';
import { showTime } from './time.js';
import { shareTargets } from './visibility.js';

const RELATION_WORDS = { owned: 'Owned', shared: 'Shared with us', mirror: 'Mirror' };

// What each section says and sends: `kind` is the API's path segment.
const SECTIONS = [
  {
    kind: 'telemetry',
    title: 'Telemetry sharing',
    about: 'Every point this asset reports is delivered to each target tenant, under the target asset id.',
    none: 'The telemetry of this asset is not shared.',
  },
  {
    kind: 'details',
    title: 'Details sharing',
    about: 'The fields a profile names are copied to each target tenant\'s asset, and kept up to date.',
    none: 'The details of this asset are not shared.',
  },
];

// /v1/assets/{asset}/... with each part encoded.
const path = (...parts) => `/v1/assets/${parts.map(encodeURIComponent).join('/')}`;

export async function render(view, ctx) {
  const assetId = (ctx.params || []).join('/');
  if (!assetId) {
    fill(view, h('h1', {}, 'Asset configuration'),
      h('p', { class: 'info' }, 'Open an asset on the ', h('a', { href: '#/assets' }, 'Assets'), ' page and choose Configuration.'));
    return;
  }
  const account = ctx.account;
  let asset;
  try {
    asset = await api('GET', withQuery(path(assetId), { account_id: account }));
  } catch (error) {
    fill(view, h('h1', {}, 'Asset configuration'), problemView(error));
    return;
  }
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { id: 'config-body' });
  let current = 'sharing';
  fill(view,
    h('p', {}, h('a', { href: '#/assets', class: 'link' }, '← Assets')),
    h('div', { class: 'page-head' }, h('h1', {}, `Asset configuration: ${asset.name}`)),
    tabs, body);

  function drawTabs() {
    fill(tabs, [['details', 'Details'], ['sharing', 'Sharing']].map(([key, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${key}`,
      class: key === current ? 'tab active' : 'tab',
      'aria-selected': key === current ? 'true' : 'false',
      onclick: () => { current = key; drawTabs(); drawBody(); },
    }, label)));
  }

  function drawBody() {
    if (current === 'details') {
      fill(body, h('dl', { class: 'facts', id: 'asset-facts' },
        h('dt', {}, 'Id'), h('dd', {}, h('code', {}, asset.id)),
        h('dt', {}, 'Name'), h('dd', {}, asset.name),
        h('dt', {}, 'Serial'), h('dd', {}, asset.serial || '—'),
        h('dt', {}, 'Relation'), h('dd', {}, RELATION_WORDS[asset.relation] || asset.relation),
        h('dt', {}, 'Unit'), h('dd', {}, asset.device_id ? h('code', {}, asset.device_id) : '—'),
        h('dt', {}, 'Created'), h('dd', {}, showTime(asset.created_at))));
      return;
    }
    renderSharing(body, asset, ctx);
  }

  drawTabs();
  drawBody();
}

// The Sharing tab: both sections, drawn again after every saved change.
async function renderSharing(container, asset, ctx) {
  fill(container, h('p', { class: 'muted' }, 'Loading…'));
  const account = ctx.account;
  let sharing;
  let names = new Map();
  let profiles = [];
  try {
    sharing = await api('GET', withQuery(path(asset.id, 'sharing'), { account_id: account }));
  } catch (error) {
    fill(container, problemView(error));
    return;
  }
  // Edit is for the owner's account admins; a mirror is read-only (rule 5).
  const canEdit = ctx.administersAccount && asset.relation === 'owned';
  if (canEdit) {
    try {
      const [targets, profilePage] = await Promise.all([
        shareTargets('', account),
        api('GET', withQuery('/v1/sharing-profiles', { account_id: account, limit: 1000 })),
      ]);
      names = new Map(targets.map((t) => [t.account_id, t.name]));
      profiles = profilePage.items;
    } catch (error) {
      container.prepend(problemView(error));
    }
  }
  const reload = () => renderSharing(container, asset, ctx);
  fill(container,
    sharing.mirror_of ? h('p', { class: 'info', id: 'mirror-of' },
      `This asset is a mirror of asset ${sharing.mirror_of.asset_id} of account ${sharing.mirror_of.account_id}`,
      sharing.mirror_of.telemetry_live ? ' (its telemetry arrives live).' : '.') : null,
    canEdit ? null : h('p', { class: 'muted', id: 'read-only' },
      asset.relation === 'owned'
        ? 'Only an admin of this account changes its tenant sharing.'
        : 'A mirror or a shared asset cannot be shared on.'),
    SECTIONS.map((section) => {
      const box = h('section', { class: 'section', id: `${section.kind}-sharing` });
      drawSection(box, section, sharing[section.kind] || [], { asset, ctx, canEdit, names, profiles, reload });
      return box;
    }));
}

function targetWords(target, names) {
  const name = names.get(target.target_account_id);
  return name ? `${name} (${target.target_account_id})` : target.target_account_id;
}

function profileWords(id, profiles) {
  const profile = profiles.find((p) => p.id === id);
  return profile ? `${profile.name}: ${profile.fields.join(', ')}` : id;
}

// The target tenant as typed: an account id, or the name of one of the suggested accounts
// (people type the name they see in the suggestions), which then stands for its id.
function tenantId(typed, names) {
  const named = [...names].filter(([, name]) => name.toLowerCase() === typed.toLowerCase());
  return named.length === 1 ? named[0][0] : typed;
}

const targetKey = (t) => `${t.target_account_id}/${t.target_asset_id}`;

// One section, read-only with an Edit button for those who may change it.
function drawSection(box, section, targets, env) {
  const { canEdit, names, profiles } = env;
  const details = section.kind === 'details';
  const table = targets.length
    ? h('table', { class: 'grid compact', 'data-test': 'targets' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Target tenant'), h('th', {}, 'Target asset id'),
        details ? h('th', {}, 'Profile') : null)),
      h('tbody', {}, targets.map((t) => h('tr', { 'data-target': targetKey(t) },
        h('td', {}, targetWords(t, names)),
        h('td', {}, h('code', {}, t.target_asset_id)),
        details ? h('td', {}, profileWords(t.profile_id, profiles)) : null))))
    : h('p', { class: 'muted', 'data-test': 'no-targets' }, section.none);
  fill(box,
    h('div', { class: 'page-head' }, h('h2', {}, section.title),
      canEdit ? h('button', {
        type: 'button', class: 'secondary', 'data-test': 'edit',
        onclick: () => editSection(box, section, targets, env),
      }, 'Edit') : null),
    h('p', { class: 'muted' }, section.about),
    table);
}

// The section's form: a "Stop sharing" box per target and one new target; Save applies
// the stops, then the addition, and says what it did; Discard changes nothing.
function editSection(box, section, targets, env) {
  const { asset, ctx, names, profiles, reload } = env;
  const details = section.kind === 'details';
  const stops = targets.map((t) => ({
    target: t,
    box: h('input', { type: 'checkbox', 'data-test': 'stop', 'aria-label': `Stop sharing into ${targetKey(t)}` }),
  }));
  const listId = `${section.kind}-tenants`;
  const form = {
    tenant: h('input', { id: `${section.kind}-target-tenant`, list: listId, placeholder: 'account id', autocomplete: 'off' }),
    asset: h('input', { id: `${section.kind}-target-asset`, placeholder: 'asset id in that tenant', autocomplete: 'off' }),
    profile: details ? h('select', { id: 'details-profile' },
      h('option', { value: '' }, profiles.length ? 'Pick a profile' : 'No profile yet'),
      profiles.map((p) => h('option', { value: p.id }, `${p.name} (${p.fields.join(', ')})`))) : null,
  };
  const area = h('div', { class: 'problem-area' });
  const save = h('button', { type: 'submit', class: 'primary', 'data-test': 'save' }, 'Save');
  const el = h('form', { class: 'edit-form' },
    h('h2', {}, `${section.title}: edit`),
    stops.length ? h('table', { class: 'grid compact' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Target tenant'), h('th', {}, 'Target asset id'),
        details ? h('th', {}, 'Profile') : null, h('th', {}, 'Stop sharing'))),
      h('tbody', {}, stops.map(({ target, box: stop }) => h('tr', { 'data-target': targetKey(target) },
        h('td', {}, targetWords(target, names)),
        h('td', {}, h('code', {}, target.target_asset_id)),
        details ? h('td', {}, profileWords(target.profile_id, profiles)) : null,
        h('td', {}, stop))))) : null,
    // Rule 4: support staff end shares but start none (a share outlives their access).
    ctx.user.kind === 'staff' ? h('p', { class: 'muted', id: `${section.kind}-no-new-target` },
      'Support access starts no tenant share: it would go on after the access ends. The account\'s admin adds targets.') : h('fieldset', { class: 'field' }, h('legend', {}, 'Add a target'),
      h('label', { class: 'field' }, h('span', {}, 'Target tenant id'), form.tenant,
        h('datalist', { id: listId }, [...names].map(([id, name]) => h('option', { value: id }, name))),
        h('small', {}, 'An account you administer, or one in a partner organization.')),
      h('label', { class: 'field' }, h('span', {}, 'Target asset id'), form.asset,
        h('small', {}, 'Created there as a mirror if absent.')),
      details ? h('label', { class: 'field' }, h('span', {}, 'Profile'), form.profile,
        h('small', {}, h('a', { href: '#/profiles', class: 'link' }, 'Manage profiles'))) : null),
    area,
    h('div', { class: 'actions' },
      h('button', {
        type: 'button', class: 'secondary', 'data-test': 'discard',
        onclick: () => drawSection(box, section, targets, env),
      }, 'Discard'),
      save));
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    area.replaceChildren();
    const chosen = stops.filter((s) => s.box.checked).map((s) => s.target);
    const tenant = tenantId(form.tenant.value.trim(), names);
    const target = form.asset.value.trim();
    if (!chosen.length && !tenant && !target) {
      fill(area, problemView(new Error('Nothing to save: tick a target to stop, or fill in a new one.')));
      return;
    }
    if ((tenant || target) && !(tenant && target)) {
      fill(area, problemView(new Error('A new target needs both the target tenant id and the target asset id.')));
      return;
    }
    if (details && tenant && !form.profile.value) {
      fill(area, problemView(new Error('Pick the profile of fields to copy.')));
      return;
    }
    save.disabled = true;
    const done = [];
    try {
      for (const stop of chosen) {
        await api('DELETE', withQuery(path(asset.id, 'sharing', section.kind, 'targets',
          stop.target_account_id, stop.target_asset_id), { account_id: ctx.account }));
        done.push(`stopped sharing into ${targetWords(stop, names)}`);
        // Saved: a second Save must not try it again.
        stops.splice(stops.findIndex((s) => s.target === stop), 1);
      }
      if (tenant) {
        const payload = { target_account_id: tenant, target_asset_id: target };
        if (details) payload.profile_id = form.profile.value;
        await api('POST', withQuery(path(asset.id, 'sharing', section.kind, 'targets'), { account_id: ctx.account }), payload);
        done.push(`shared into ${targetWords(payload, names)} as ${target}`);
      }
    } catch (error) {
      fill(area, done.length ? h('p', { class: 'info' }, `Saved so far: ${done.join('; ')}.`) : null, problemView(error));
      save.disabled = false;
      return;
    }
    ctx.notify(`${section.title} of ${asset.name} saved: ${done.join('; ')}.`);
    reload();
  });
  fill(box, el);
  form.tenant.focus();
}
