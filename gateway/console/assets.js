// Flow 1, the asset list: search by name, serial or id, filter by relation, page with the
// API's cursors, select one or many, Share or Remove visibility; an asset's side panel
// shows its details and who sees it, with a quick share and quick remove.

import { fill, h } from './dom.js';
import { showTime } from './time.js';
import { openVisibilityDialog, renderWhoSees } from './visibility.js';
import { firstPage, loadPage, pagerControls } from './paging.js';
import { assetUnitSection, openCreateAsset } from './assetunits.js';

const LIMIT = 50;
const RELATIONS = [['', 'Any relation'], ['owned', 'Owned'], ['shared', 'Shared with us'], ['mirror', 'Mirror']];
const RELATION_WORDS = { owned: 'Owned', shared: 'Shared with us', mirror: 'Mirror' };

export async function render(view, ctx) {
  const state = { q: '', relation: '', cursors: [null], page: 0, items: [], selected: new Map(), open: null };
  const search = h('input', { type: 'search', id: 'asset-search', placeholder: 'Search by name, serial or id', 'aria-label': 'Search assets' });
  const relation = h('select', { id: 'relation-filter', 'aria-label': 'Relation' },
    RELATIONS.map(([value, label]) => h('option', { value }, label)));
  const toolbar = h('form', { class: 'toolbar', role: 'search', id: 'asset-filter' },
    search, relation, h('button', { type: 'submit', class: 'secondary', id: 'search' }, 'Search'));
  toolbar.addEventListener('submit', (event) => {
    event.preventDefault();
    state.q = search.value.trim();
    state.relation = relation.value;
    firstPage(state, load);
  });
  relation.addEventListener('change', () => toolbar.requestSubmit());

  const share = ctx.canManageFleet ? h('button', { type: 'button', class: 'primary', id: 'share', disabled: true }, 'Share visibility') : null;
  const remove = ctx.canManageFleet ? h('button', { type: 'button', class: 'secondary', id: 'remove', disabled: true }, 'Remove visibility') : null;
  const create = ctx.canManageFleet ? h('button', { type: 'button', class: 'secondary', id: 'create-asset' }, 'Create asset') : null;
  const selection = h('div', { class: 'selection', id: 'selection' });
  const list = h('div', { class: 'list', id: 'asset-list' });
  const pager = h('div', { class: 'pager' });
  const panel = h('aside', { class: 'panel', id: 'asset-panel', hidden: true });

  const reload = () => { load(); if (state.open) openPanel(state.open); };
  const dialogFor = (mode, assets) => openVisibilityDialog({
    mode, assets, notify: ctx.notify, done: reload, account: ctx.account,
  });
  if (share) share.addEventListener('click', () => dialogFor('share', [...state.selected.values()]));
  if (remove) remove.addEventListener('click', () => dialogFor('remove', [...state.selected.values()]));
  if (create) create.addEventListener('click', () => openCreateAsset(ctx, load));

  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Assets'), h('div', { class: 'actions' }, create, share, remove)),
    toolbar,
    selection,
    h('div', { class: 'with-panel' }, h('div', {}, list, pager), panel));

  function drawSelection() {
    const n = state.selected.size;
    if (share) share.disabled = n === 0;
    if (remove) remove.disabled = n === 0;
    fill(selection, n
      ? [h('span', { id: 'selected-count' }, `${n} selected`), ' ',
        h('button', { type: 'button', class: 'link', onclick: () => { state.selected.clear(); draw(); } }, 'Clear selection')]
      : (ctx.canManageFleet ? h('span', { class: 'muted' }, 'Select assets to share or remove their visibility.') : null));
  }

  function draw() {
    drawSelection();
    if (!state.items.length) {
      fill(list, h('p', { class: 'empty', id: 'no-assets' },
        state.q || state.relation ? 'No asset matches.' : 'No assets yet.'));
    } else {
      const all = ctx.canManageFleet ? h('input', {
        type: 'checkbox', 'aria-label': 'Select every asset of this page',
        checked: state.items.every((a) => state.selected.has(a.id)),
        onchange: (event) => {
          for (const a of state.items) {
            if (event.target.checked) state.selected.set(a.id, a); else state.selected.delete(a.id);
          }
          draw();
        },
      }) : null;
      fill(list, h('table', { class: 'grid', id: 'assets-table' },
        h('thead', {}, h('tr', {}, ctx.canManageFleet ? h('th', { class: 'check' }, all) : null,
          h('th', {}, 'Name'), h('th', {}, 'Id'), h('th', {}, 'Serial'), h('th', {}, 'Relation'),
          h('th', {}, 'Visible until'), h('th', {}, 'Created'))),
        h('tbody', {}, state.items.map((asset) => h('tr', {
          'data-id': asset.id,
          class: state.open && state.open.id === asset.id ? 'open' : null,
        },
        ctx.canManageFleet ? h('td', { class: 'check' }, h('input', {
          type: 'checkbox', 'aria-label': `Select ${asset.name}`,
          checked: state.selected.has(asset.id),
          onchange: (event) => {
            if (event.target.checked) state.selected.set(asset.id, asset); else state.selected.delete(asset.id);
            drawSelection();
          },
        })) : null,
        h('td', {}, h('button', { type: 'button', class: 'link', 'data-test': 'open-asset', onclick: () => openPanel(asset) }, asset.name)),
        h('td', {}, h('code', {}, asset.id)),
        h('td', {}, asset.serial || '—'),
        h('td', {}, h('span', { class: `tag ${asset.relation}` }, RELATION_WORDS[asset.relation] || asset.relation)),
        h('td', { class: 'time' }, asset.visible_until ? showTime(asset.visible_until) : ''),
        h('td', { class: 'time' }, showTime(asset.created_at)))))));
    }
    fill(pager, pagerControls(state, load));
  }

  function load() {
    const query = { account_id: ctx.account, q: state.q, relation: state.relation, limit: LIMIT };
    return loadPage(list, state, '/v1/assets', query, draw);
  }

  async function openPanel(asset) {
    state.open = asset;
    for (const row of list.querySelectorAll('tr[data-id]')) row.classList.toggle('open', row.dataset.id === asset.id);
    const owned = asset.relation === 'owned';
    const canManage = ctx.canManageFleet && owned;
    const who = h('div', { id: 'who-sees-area' });
    panel.hidden = false;
    fill(panel,
      h('header', {}, h('h2', {}, asset.name),
        h('button', {
          type: 'button', class: 'close', 'aria-label': 'Close', id: 'close-panel',
          onclick: () => { state.open = null; panel.hidden = true; draw(); },
        }, '×')),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Id'), h('dd', {}, h('code', {}, asset.id)),
        h('dt', {}, 'Serial'), h('dd', {}, asset.serial || '—'),
        h('dt', {}, 'Relation'), h('dd', {}, RELATION_WORDS[asset.relation] || asset.relation),
        asset.device_id ? [h('dt', {}, 'Unit'), h('dd', {}, h('code', {}, asset.device_id))] : null,
        h('dt', {}, 'Created'), h('dd', {}, showTime(asset.created_at)),
        asset.visible_until ? [h('dt', {}, 'We see it until'), h('dd', {}, showTime(asset.visible_until))] : null),
      // Flow 3: an owned asset's or a mirror's configuration (its tenant sharing).
      owned || asset.relation === 'mirror' ? h('p', {}, h('a', {
        href: `#/asset-config/${encodeURIComponent(asset.id)}`, class: 'link', id: 'configure-asset',
      }, 'Configuration and sharing')) : null,
      h('h3', {}, 'Who sees it'),
      who,
      canManage ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'quick-remove', onclick: () => dialogFor('remove', [asset]) }, 'Remove visibility'),
        h('button', { type: 'button', class: 'primary', id: 'quick-share', onclick: () => dialogFor('share', [asset]) }, 'Share this asset')) : null,
      canManage ? assetUnitSection(asset, ctx, {
        changed: (now) => { load(); openPanel(now); },
        gone: () => { state.open = null; panel.hidden = true; state.selected.delete(asset.id); load(); },
      }) : null);
    await renderWhoSees(who, asset, { canManage, notify: ctx.notify, changed: reload, account: ctx.account });
  }

  draw();
  await load();
}
