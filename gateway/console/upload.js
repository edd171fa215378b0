// Flow 4's bulk upload of operators: drop (or choose) a CSV or XLSX file, or download the
// templates; the gateway's preview shows every row as the sheet holds it with its errors
// (row and column, as the spreadsheet numbers them); pick the rows to import (the valid
// ones are picked, a row with errors cannot be); import the picked rows; then send SMS
// invitations to the imported operators picked for it.

import { api, withQuery } from './api.js';
import { fill, h, problemView } from './dom.js';
import { ACCESS_WORDS } from './keywizard.js';

const CSV = 'text/csv';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

// The content type the gateway reads a file as, by its name (browsers give a CSV many
// types, and none at all on some systems); null for neither.
export function importType(file) {
  const lower = file.name.toLowerCase();
  if (lower.endsWith('.csv')) return CSV;
  if (lower.endsWith('.xlsx')) return XLSX;
  return null;
}

// "row 3, column phone: ..." lines of an import problem (its `errors`), if it has them.
function rowErrors(error) {
  const errors = error && error.problem && Array.isArray(error.problem.errors) ? error.problem.errors : [];
  return errors.length ? h('ul', { class: 'row-errors', id: 'file-errors' },
    errors.map((e) => h('li', {}, `Row ${e.row}, column ${e.column}: ${e.message}`))) : null;
}

export async function render(view, ctx) {
  const input = h('input', { type: 'file', id: 'import-file', accept: `.csv,.xlsx,${CSV},${XLSX}`, 'aria-label': 'Choose a file' });
  const drop = h('div', { class: 'dropzone', id: 'dropzone' },
    h('p', {}, h('strong', {}, 'Drop a CSV or XLSX file here')),
    h('p', {}, 'or choose one: ', input));
  const result = h('div', { id: 'import-result' });
  const problems = h('div', { class: 'problem-area', id: 'import-problems' });
  const templates = (name) => withQuery(`/v1/operators/template.${name}`, {});
  fill(view,
    h('p', {}, h('a', { href: '#/operators', class: 'link' }, '← Operators')),
    h('div', { class: 'page-head' }, h('h1', {}, 'Bulk upload operators')),
    h('p', { class: 'muted' }, 'One operator per row: name (mandatory), phone with its + country code, access type, send_sms_invite. Start from a template:'),
    h('p', { class: 'actions start' },
      h('a', { href: templates('csv'), class: 'button secondary', id: 'template-csv', download: 'operators-template.csv' }, 'Download the CSV template'),
      h('a', { href: templates('xlsx'), class: 'button secondary', id: 'template-xlsx', download: 'operators-template.xlsx' }, 'Download the XLSX template')),
    drop, problems, result);

  for (const name of ['dragenter', 'dragover']) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add('over'); });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const [file] = event.dataTransfer.files;
    if (file) preview(file);
  });
  input.addEventListener('change', () => {
    if (input.files[0]) preview(input.files[0]);
    input.value = '';
  });

  async function preview(file) {
    problems.replaceChildren();
    result.replaceChildren();
    const type = importType(file);
    if (!type) {
      fill(problems, problemView(new Error(`${file.name} is neither a .csv nor a .xlsx file.`)));
      return;
    }
    let rows;
    try {
      rows = (await api('POST', withQuery('/v1/operators/import/preview', { account_id: ctx.account }), file, { contentType: type })).rows;
    } catch (error) {
      fill(problems, problemView(error), rowErrors(error));
      return;
    }
    showRows(file, type, rows);
  }

  function showRows(file, type, rows) {
    const picked = new Set(rows.filter((r) => !r.errors.length).map((r) => r.row));
    const bad = rows.filter((r) => r.errors.length).length;
    const count = h('span', { id: 'picked-count' });
    const importButton = h('button', { type: 'button', class: 'primary', id: 'import-selected' });
    const drawCount = () => {
      count.textContent = `${picked.size} of ${rows.length} rows selected`;
      importButton.textContent = `Import selected (${picked.size})`;
      importButton.disabled = picked.size === 0;
    };
    const area = h('div', { class: 'problem-area' });
    importButton.addEventListener('click', async () => {
      importButton.disabled = true;
      area.replaceChildren();
      const numbers = [...picked].sort((a, b) => a - b).join(',');
      try {
        const answer = await api('POST', withQuery('/v1/operators/import', { account_id: ctx.account, rows: numbers }), file, { contentType: type });
        ctx.notify(`Imported ${answer.items.length} operators from ${file.name}.`);
        showImported(answer.items);
      } catch (error) {
        fill(area, problemView(error), rowErrors(error));
        importButton.disabled = false;
      }
    });
    fill(result,
      h('h2', {}, file.name),
      h('p', { id: 'import-summary', class: bad ? 'info' : 'muted' },
        `${rows.length} rows; ${bad ? `${bad} with errors (fix them in the file and drop it again, or leave them out)` : 'no errors'}.`),
      h('table', { class: 'grid compact', id: 'import-rows' },
        h('thead', {}, h('tr', {}, h('th', { class: 'check' }, ''), h('th', {}, 'Row'), h('th', {}, 'Name'), h('th', {}, 'Phone'),
          h('th', {}, 'Access type'), h('th', {}, 'SMS invite'), h('th', {}, 'Errors'))),
        h('tbody', {}, rows.map((row) => h('tr', { 'data-row': row.row, class: row.errors.length ? 'has-errors' : null },
          h('td', { class: 'check' }, h('input', {
            type: 'checkbox', 'aria-label': `Import row ${row.row}`, checked: picked.has(row.row), disabled: row.errors.length > 0,
            onchange: (event) => { if (event.target.checked) picked.add(row.row); else picked.delete(row.row); drawCount(); },
          })),
          h('td', {}, String(row.row)),
          h('td', {}, row.name || ''),
          h('td', {}, row.phone || ''),
          h('td', {}, row.access_type || ''),
          h('td', {}, row.send_sms_invite || ''),
          h('td', { class: 'errors' }, row.errors.map((e) => h('div', { class: 'row-error' }, `Row ${e.row}, column ${e.column}: ${e.message}`))))))),
      area,
      h('div', { class: 'actions' }, count, importButton));
    drawCount();
  }

  // The imported operators; those with a phone whose row did not ask for an invitation
  // can be picked for one (a later resend is on the operators page).
  function showImported(items) {
    const canInvite = (o) => Boolean(o.phone) && !o.invitation;
    const picked = new Set(items.filter(canInvite).map((o) => o.id));
    const outcome = new Map();
    const send = h('button', { type: 'button', class: 'primary', id: 'send-invitations' });
    const drawButton = () => {
      send.textContent = `Send invitations to selected (${picked.size})`;
      send.disabled = picked.size === 0;
    };
    const table = h('table', { class: 'grid compact', id: 'imported' });
    const drawTable = () => fill(table,
      h('thead', {}, h('tr', {}, h('th', { class: 'check' }, ''), h('th', {}, 'Name'), h('th', {}, 'Phone'), h('th', {}, 'Access type'), h('th', {}, 'SMS invitation'))),
      h('tbody', {}, items.map((o) => h('tr', { 'data-id': o.id },
        h('td', { class: 'check' }, h('input', {
          type: 'checkbox', 'aria-label': `Invite ${o.name}`, checked: picked.has(o.id), disabled: !canInvite(o),
          onchange: (event) => { if (event.target.checked) picked.add(o.id); else picked.delete(o.id); drawButton(); },
        })),
        h('td', {}, o.name), h('td', {}, o.phone || '—'), h('td', {}, ACCESS_WORDS.get(o.access_type) || '—'),
        h('td', { 'data-test': 'invitation' }, outcome.get(o.id)
          || (o.invitation ? 'queued' : (o.phone ? 'not invited' : 'no phone')))))));
    send.addEventListener('click', async () => {
      send.disabled = true;
      let sent = 0;
      for (const id of [...picked]) {
        try {
          const operator = await api('POST', `/v1/operators/${encodeURIComponent(id)}/invitation`);
          items[items.findIndex((o) => o.id === id)] = operator;
          outcome.set(id, 'queued now');
          sent += 1;
        } catch (error) {
          outcome.set(id, `not sent: ${error.detail}`);
        }
        picked.delete(id);
      }
      drawTable();
      drawButton();
      ctx.notify(`Sent ${sent} SMS invitation${sent === 1 ? '' : 's'}.`);
    });
    fill(result,
      h('h2', {}, 'Imported'),
      h('p', { class: 'muted' }, 'Pick the operators to send an SMS invitation to. Those whose row asked for one have it queued already.'),
      table,
      h('div', { class: 'actions' }, h('a', { href: '#/operators', class: 'button secondary', id: 'to-operators' }, 'Done'), send));
    drawTable();
    drawButton();
  }
}
