// Flow 1's dialogs: "Share visibility" and "Remove visibility" (pick the account, the
// assets and, to share, how long; review what the gateway's dry run answers; confirm), and
// an asset's "Who sees it" list with its quick remove.

import { api, withQuery } from './api.js';
import { confirmDialog, fill, h, modal, problemView } from './dom.js';
import { localToRfc3339, showTime } from './time.js';

const REACH = { descendant: 'sub-account', partner: 'partner' };

// Every account the owner account (null: the caller's own) may share with
// (GET /v1/share-targets), by name.
export async function shareTargets(q, account) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', withQuery('/v1/share-targets', { account_id: account, q, cursor, limit: 1000 }));
    items.push(...page.items);
    cursor = page.next_cursor || null;
  } while (cursor && items.length < 10000);
  return items;
}

function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

function windowWords(from, until) {
  return until ? `until ${showTime(until)}` : 'permanently';
}

const CHANGES = {
  created: 'will be shared',
  updated: 'its window will change',
  unchanged: 'already shared like this',
};

// The share (mode 'share') or remove (mode 'remove') dialog for assets (asset objects).
// done() runs after a confirmed change (to reload what the page shows).
// account: the owner account a staff member works in (null: the caller's own).
export function openVisibilityDialog({ mode, assets, notify, done, account = null }) {
  const sharing = mode === 'share';
  const chosen = new Map(assets.map((asset) => [asset.id, asset]));
  const title = sharing ? 'Share visibility' : 'Remove visibility';
  const body = h('div', { class: 'dialog-body' });
  const dialog = modal(h('h2', {}, title), body);
  dialog.id = sharing ? 'share-dialog' : 'remove-dialog';
  let targets = [];
  const form = {
    account: h('select', { id: 'target-account', required: true, size: 6 }),
    filter: h('input', { type: 'search', id: 'target-search', placeholder: 'Search accounts by name' }),
    permanent: h('input', { type: 'radio', name: 'window', id: 'window-permanent', value: 'permanent', checked: true }),
    until: h('input', { type: 'radio', name: 'window', id: 'window-until', value: 'until' }),
    untilDate: h('input', { type: 'date', id: 'until-date' }),
    untilTime: h('input', { type: 'time', id: 'until-time', value: '00:00' }),
  };
  form.untilDate.addEventListener('input', () => { form.until.checked = true; });

  async function loadTargets() {
    const selected = form.account.value;
    try {
      targets = await shareTargets(form.filter.value.trim(), account);
    } catch (error) {
      fill(form.account);
      form.account.after(problemView(error));
      return;
    }
    fill(form.account, targets.map((t) => h('option', { value: t.account_id },
      `${t.name} (${REACH[t.reach] || t.reach})`)));
    if (targets.some((t) => t.account_id === selected)) form.account.value = selected;
    if (!targets.length) fill(form.account, h('option', { value: '', disabled: true }, 'No account matches'));
  }
  let filterTimer = null;
  form.filter.addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(loadTargets, 250);
  });

  function request() {
    const target = targets.find((t) => t.account_id === form.account.value);
    if (!target) throw new Error('Pick the account.');
    if (!chosen.size) throw new Error('Pick at least one asset.');
    const payload = { account_id: target.account_id, asset_ids: [...chosen.keys()] };
    if (account) payload.owner_account_id = account;
    if (sharing && form.until.checked) {
      const until = localToRfc3339(form.untilDate.value, form.untilTime.value);
      if (!until) throw new Error('Pick the date the sight ends, or choose Permanently.');
      payload.until = until;
    }
    return { account: target, payload };
  }

  const path = (dryRun) => withQuery(sharing ? '/v1/visibility/grants' : '/v1/visibility/remove',
    { dry_run: dryRun ? 'true' : null });

  function choose(problem) {
    const assetList = h('ul', { class: 'chips', id: 'chosen-assets' });
    const drawAssets = () => fill(assetList, [...chosen.values()].map((asset) => h('li', {},
      `${asset.name} (${asset.id})`,
      h('button', {
        type: 'button', class: 'chip-remove', 'aria-label': `Leave out ${asset.name}`,
        onclick: () => { chosen.delete(asset.id); drawAssets(); },
      }, '×'))),
    chosen.size ? null : h('li', { class: 'muted' }, 'No asset picked.'));
    drawAssets();
    const area = h('div', { class: 'problem-area' }, problem ? problemView(problem) : null);
    fill(body,
      h('label', { class: 'field' }, h('span', {}, sharing ? 'Share with' : 'Remove from'), form.filter, form.account,
        h('small', {}, 'Your sub-accounts and partner accounts.')),
      h('div', { class: 'field' }, h('span', {}, 'Assets'), assetList),
      sharing ? h('fieldset', { class: 'field' }, h('legend', {}, 'For how long'),
        h('label', { class: 'inline' }, form.permanent, 'Permanently'),
        h('label', { class: 'inline' }, form.until, 'Until', form.untilDate, form.untilTime,
          h('small', {}, 'your local time'))) : null,
      area,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
        h('button', { type: 'button', class: 'primary', id: 'review', onclick: review }, 'Review')));

    async function review() {
      let chosenRequest;
      try {
        chosenRequest = request();
      } catch (error) {
        fill(area, problemView(error));
        return;
      }
      try {
        const answer = await api('POST', path(true), chosenRequest.payload);
        showReview(chosenRequest, answer);
      } catch (error) {
        fill(area, problemView(error));
      }
    }
  }

  function showReview({ account, payload }, answer) {
    const area = h('div', { class: 'problem-area' });
    const items = answer.items || [];
    const names = new Map([...chosen.values()].map((a) => [a.id, a.name]));
    const summary = sharing
      ? `Share ${plural(payload.asset_ids.length, 'asset', 'assets')} with ${account.name} ${windowWords(null, payload.until)}.`
      : `Remove what ${account.name} sees of ${plural(payload.asset_ids.length, 'asset', 'assets')}.`;
    const table = items.length
      ? h('table', { class: 'grid', id: 'review-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Asset'), h('th', {}, sharing ? 'Change' : 'Sight that ends'),
          h('th', {}, 'Visible from'), h('th', {}, 'Visible until'))),
        h('tbody', {}, items.map((grant) => h('tr', {},
          h('td', {}, `${names.get(grant.asset_id) || grant.asset_id} (${grant.asset_id})`),
          h('td', {}, sharing ? (CHANGES[grant.change] || grant.change) : (grant.active ? 'sees it now' : 'starts later')),
          h('td', { class: 'time' }, showTime(grant.from)),
          h('td', { class: 'time' }, grant.until ? showTime(grant.until) : 'permanently')))))
      : h('p', { class: 'info', id: 'review-empty' },
        sharing ? 'Nothing would change.' : `${account.name} sees none of these assets: there is nothing to remove.`);
    const confirm = h('button', {
      type: 'button', class: sharing ? 'primary' : 'danger', id: 'confirm',
      disabled: !sharing && !items.length,
    }, sharing ? 'Confirm and share' : 'Confirm and remove');
    confirm.addEventListener('click', async () => {
      confirm.disabled = true;
      area.replaceChildren();
      try {
        const result = await api('POST', path(false), payload);
        dialog.close();
        const count = (result.items || []).length;
        notify(sharing
          ? `Shared ${plural(payload.asset_ids.length, 'asset', 'assets')} with ${account.name} ${windowWords(null, payload.until)}.`
          : `Removed what ${account.name} saw of ${plural(count, 'asset', 'assets')}.`);
        done();
      } catch (error) {
        // A stale review (the state changed since the dry run): the gateway's words.
        fill(area, problemView(error));
        confirm.disabled = false;
      }
    });
    fill(body,
      h('p', { class: 'summary', id: 'review-summary' }, summary),
      h('p', { class: 'muted' }, 'The gateway checked this without changing anything. It answered:'),
      table,
      area,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'cancel', onclick: () => dialog.close() }, 'Cancel'),
        h('button', { type: 'button', class: 'secondary', id: 'back', onclick: () => choose() }, 'Back'),
        confirm));
  }

  choose();
  loadTargets();
  return dialog;
}

// "Who sees it": the asset's grants (GET /v1/visibility/grants?asset_id=), each with its
// window, and for those who may change it a Remove per grant.
export async function renderWhoSees(container, asset, { canManage, notify, changed, account = null }) {
  fill(container, h('p', { class: 'muted' }, 'Loading…'));
  let grants;
  const names = new Map();
  try {
    const page = await api('GET', withQuery('/v1/visibility/grants', { asset_id: asset.id, limit: 1000 }));
    grants = page.items;
    if (canManage && grants.length) {
      for (const t of await shareTargets('', account)) names.set(t.account_id, t.name);
    }
  } catch (error) {
    fill(container, problemView(error));
    return;
  }
  if (!grants.length) {
    fill(container, h('p', { class: 'muted', id: 'who-sees-none' }, 'Only its own account sees this asset.'));
    return;
  }
  fill(container, h('table', { class: 'grid compact', id: 'who-sees' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Account'), h('th', {}, 'From'), h('th', {}, 'Until'),
      canManage ? h('th', {}, '') : null)),
    h('tbody', {}, grants.map((grant) => {
      const name = names.get(grant.account_id) || grant.account_id;
      return h('tr', { 'data-account': grant.account_id },
        h('td', {}, name, grant.active ? null : h('small', { class: 'muted' }, ' (not yet)')),
        h('td', { class: 'time' }, showTime(grant.from)),
        h('td', { class: 'time' }, grant.until ? showTime(grant.until) : 'permanently'),
        canManage ? h('td', {}, h('button', {
          type: 'button', class: 'link danger', 'data-test': 'remove-grant',
          onclick: async () => {
            const yes = await confirmDialog({
              title: 'Remove visibility',
              body: `${name} will no longer see ${asset.name}. Its live view ends now.`,
              confirm: 'Remove',
              danger: true,
            });
            if (!yes) return;
            try {
              await api('DELETE', `/v1/visibility/grants/${encodeURIComponent(grant.id)}`);
              notify(`${name} no longer sees ${asset.name}.`);
              changed();
            } catch (error) {
              container.prepend(problemView(error));
            }
          },
        }, 'Remove')) : null);
    }))));
}
