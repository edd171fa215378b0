// Flow 5, Live and history: pick an asset; its latest point, updated live from the SSE
// stream (`/v1/assets/{x}/stream`, which the gateway ends when the viewer loses sight of
// the asset); a chart of one sensor over a chosen range and the track of its positions,
// both drawn as SVG by chart.js; and for an owned asset its unit's status (online, last
// seen, errors, whether the key set was delivered). The route is #/live/<asset id>.

import { api, withQuery } from './api.js';
import { fill, h, problemView } from './dom.js';
import { showTime, localToRfc3339 } from './time.js';
import { formatNumber, lineChart, trackMap } from './chart.js';
import { unitStatusFacts } from './devices.js';
import { everything } from './paging.js';

// The point's own fields a chart can show, with their units.
const FIELDS = [
  ['speed_kmh', 'Speed', 'km/h'], ['fuel_pct', 'Fuel', '%'], ['engine_hours', 'Engine hours', 'h'],
  ['odometer_km', 'Odometer', 'km'], ['heading', 'Heading', '°'],
];
const RANGES = [['1h', 'Last hour', 3600e3], ['24h', 'Last 24 hours', 86400e3], ['7d', 'Last 7 days', 7 * 86400e3], ['custom', 'Custom range', 0]];
// A range is read in pages of 1,000; past this many readings the chart says it stopped.
const MAX_READINGS = 20000;
const LIVE_ROWS = 15;

// The open live stream, closed whenever the page is drawn again or left.
let stream = null;
function closeStream() {
  if (stream) stream.close();
  stream = null;
}
window.addEventListener('hashchange', closeStream);

export async function render(view, ctx) {
  closeStream();
  const wanted = decodeURIComponent(location.hash.replace(/^#\/?live\/?/, '')) || null;
  const picker = h('select', { id: 'live-asset', 'aria-label': 'Asset' });
  const body = h('div', { id: 'live-body' });
  fill(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Live and history'),
      h('label', { class: 'inline' }, h('span', {}, 'Asset'), picker)),
    body);
  let assets;
  try {
    assets = await everything('/v1/assets', { account_id: ctx.account });
  } catch (error) {
    fill(body, problemView(error));
    return;
  }
  if (!assets.length) {
    fill(body, h('p', { class: 'empty', id: 'no-live-assets' }, 'No assets to show yet.'));
    return;
  }
  const chosen = assets.find((a) => a.id === wanted) || assets[0];
  fill(picker, assets.map((a) => h('option', { value: a.id, selected: a.id === chosen.id }, `${a.name} (${a.id})`)));
  picker.addEventListener('change', () => { location.hash = `#/live/${encodeURIComponent(picker.value)}`; });
  await showAsset(body, chosen, ctx);
}

async function showAsset(body, asset, ctx) {
  const latest = h('section', { class: 'box', id: 'latest' });
  const live = h('section', { class: 'box', id: 'live' });
  const history = h('section', { class: 'box wide-box', id: 'history' });
  const unit = asset.device_id && asset.relation === 'owned' ? h('section', { class: 'box', id: 'unit-status' }) : null;
  fill(body, h('div', { class: 'boxes' }, latest, unit, live), history);
  const state = { asset, ctx, latestPoint: null, livePoints: [], history: null, tileUrl: null };
  // `--map-tile-url`, when the operator set one: tiles under the track (the page's policy
  // then allows their origin); otherwise a plain grid.
  try {
    state.tileUrl = (await api('GET', '/v1/settings')).map_tile_url || null;
  } catch (_) {
    state.tileUrl = null;
  }
  // The asset's paths (`/latest`, `/stream`, `/telemetry`) in the account the page works in.
  state.path = (suffix = '', extra = {}) => withQuery(`/v1/assets/${encodeURIComponent(asset.id)}${suffix}`,
    { account_id: ctx.account, ...extra });

  try {
    state.latestPoint = await api('GET', state.path('/latest'));
  } catch (error) {
    if (error.status !== 404) latest.append(problemView(error));
  }
  drawLatest(latest, state);
  if (unit) await drawUnit(unit, asset, ctx);
  openLive(live, latest, unit, state);
  drawHistoryForm(history, state);
}

function drawLatest(el, state) {
  const p = state.latestPoint;
  const facts = p ? pointFacts(p) : null;
  fill(el, h('h2', {}, 'Latest point'),
    p ? h('dl', { class: 'facts', id: 'latest-facts' }, facts)
      : h('p', { class: 'muted', id: 'no-latest' }, 'No reading yet (or none inside the period this account may see).'));
}

function pointFacts(p) {
  const out = [h('dt', {}, 'Time'), h('dd', { class: 'time' }, showTime(p.ts, { seconds: true }))];
  if (p.lat !== undefined && p.lon !== undefined) {
    out.push(h('dt', {}, 'Position'), h('dd', {}, `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}`));
  }
  for (const [key, label, unit] of FIELDS) {
    if (p[key] !== undefined) out.push(h('dt', {}, label), h('dd', { 'data-field': key }, `${formatNumber(p[key])} ${unit}`));
  }
  if (p.ignition !== undefined) out.push(h('dt', {}, 'Ignition'), h('dd', {}, p.ignition ? 'on' : 'off'));
  for (const [name, value] of Object.entries(p.sensors || {})) {
    out.push(h('dt', {}, name), h('dd', { 'data-field': `sensors.${name}` }, formatNumber(value)));
  }
  return out;
}

async function drawUnit(el, asset, ctx) {
  const refresh = h('button', { type: 'button', class: 'secondary', id: 'refresh-status' }, 'Refresh');
  const facts = h('div', {});
  fill(el, h('header', { class: 'box-head' }, h('h2', {}, `Unit ${asset.device_id}`), refresh), facts);
  const load = async () => {
    try {
      const status = await api('GET', withQuery(`/v1/devices/${encodeURIComponent(asset.device_id)}/status`, { account_id: ctx.account }));
      fill(facts, unitStatusFacts(status));
    } catch (error) {
      fill(facts, problemView(error));
    }
  };
  refresh.addEventListener('click', load);
  el.reload = load;
  // A refused reading (an error count going up) brings no live point to trigger a reload:
  // the status is read again every STATUS_EVERY_MS while the page shows it.
  const timer = setInterval(() => {
    if (el.isConnected) load();
    else clearInterval(timer);
  }, STATUS_EVERY_MS);
  await load();
}

const STATUS_EVERY_MS = 10000;

// The live stream: every `point` becomes the latest point, a row of the live table and,
// when the history shows a range that ends now, a new reading on the chart and track.
function openLive(el, latestEl, unitEl, state) {
  const status = h('span', { class: 'tag', id: 'live-state' }, 'Connecting…');
  const rows = h('tbody', {});
  const notes = h('div', { id: 'live-notes' });
  fill(el, h('header', { class: 'box-head' }, h('h2', {}, 'Live'), status), notes,
    h('table', { class: 'grid compact', id: 'live-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Reading'))), rows),
    h('p', { class: 'muted', id: 'live-empty' }, 'Waiting for the next reading…'));
  const source = new EventSource(state.path('/stream'), { withCredentials: true });
  stream = source;
  let statusTimer = null;
  source.addEventListener('open', () => { status.textContent = 'Live'; status.className = 'tag ok'; });
  source.addEventListener('point', (event) => {
    const point = JSON.parse(event.data);
    state.latestPoint = point;
    drawLatest(latestEl, state);
    state.livePoints.unshift(point);
    state.livePoints.length = Math.min(state.livePoints.length, LIVE_ROWS);
    el.querySelector('#live-empty')?.remove();
    fill(rows, state.livePoints.map((p) => h('tr', {}, h('td', { class: 'time' }, showTime(p.ts, { seconds: true })), h('td', {}, summary(p)))));
    if (state.history && state.history.followsNow) state.history.add(point);
    // Units report often: their status is read again at most every two seconds.
    if (unitEl && !statusTimer) statusTimer = setTimeout(() => { statusTimer = null; unitEl.reload(); }, 2000);
  });
  source.addEventListener('gap', (event) => {
    const gap = JSON.parse(event.data);
    notes.append(h('p', { class: 'info' }, `${gap.dropped} live readings were dropped while the page was busy; the history below has them.`));
  });
  source.addEventListener('reset', () => {
    notes.append(h('p', { class: 'info' }, 'The live stream started afresh; earlier readings are in the history below.'));
  });
  source.addEventListener('error', async () => {
    if (source !== stream) return;
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = 'Ended';
      status.className = 'tag bad';
      // The gateway refused to open it again: ask why, in its words.
      try {
        await api('GET', state.path());
        notes.append(h('p', { class: 'info' }, 'The live stream ended. Reload the page to reconnect.'));
      } catch (error) {
        // It was shown a moment ago: a 404 now means this account's access ended (the
        // owner stopped sharing it, or removed it); the gateway says no more, by design.
        // Access that ends is gone here too: what the page showed of the asset is cleared.
        if (error.status === 404) {
          state.livePoints = [];
          state.latestPoint = null;
          fill(el.closest('#live-body') || el, h('p', { class: 'info', id: 'live-access-ended' },
            'Your access to this asset has ended: its owner no longer shares it with your account, or removed it. What this page showed of it is cleared.'));
        } else {
          notes.append(problemView(error));
        }
      }
    } else {
      status.textContent = 'Reconnecting…';
      status.className = 'tag';
    }
  });
}

function summary(p) {
  const parts = [];
  for (const [key, label, unit] of FIELDS) if (p[key] !== undefined) parts.push(`${label} ${formatNumber(p[key])} ${unit}`);
  if (p.ignition !== undefined) parts.push(`ignition ${p.ignition ? 'on' : 'off'}`);
  for (const [name, value] of Object.entries(p.sensors || {})) parts.push(`${name} ${formatNumber(value)}`);
  if (p.lat !== undefined) parts.push(`at ${p.lat.toFixed(4)}, ${p.lon.toFixed(4)}`);
  return parts.join(' · ') || '—';
}

function drawHistoryForm(el, state) {
  const range = h('select', { id: 'range', 'aria-label': 'Range' }, RANGES.map(([v, label]) => h('option', { value: v, selected: v === '1h' }, label)));
  const fromDate = h('input', { type: 'date', id: 'from-date', 'aria-label': 'From date' });
  const fromTime = h('input', { type: 'time', id: 'from-time', 'aria-label': 'From time', value: '00:00' });
  const toDate = h('input', { type: 'date', id: 'to-date', 'aria-label': 'To date' });
  const toTime = h('input', { type: 'time', id: 'to-time', 'aria-label': 'To time', value: '00:00' });
  const custom = h('span', { class: 'custom-range', hidden: true }, 'From ', fromDate, fromTime, ' to ', toDate, toTime);
  const sensor = h('select', { id: 'sensor', 'aria-label': 'Sensor' });
  const form = h('form', { class: 'toolbar', id: 'history-form' }, range, custom,
    h('label', { class: 'inline' }, h('span', {}, 'Sensor'), sensor),
    h('button', { type: 'submit', class: 'primary', id: 'show-history' }, 'Show'));
  const out = h('div', { id: 'history-out' });
  fill(el, h('h2', {}, 'History'), form, out);
  range.addEventListener('change', () => { custom.hidden = range.value !== 'custom'; });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const span = RANGES.find(([v]) => v === range.value)[2];
    let from; let to;
    if (span) {
      to = Date.now();
      from = to - span;
    } else {
      from = Date.parse(localToRfc3339(fromDate.value, fromTime.value) || '');
      to = Date.parse(localToRfc3339(toDate.value, toTime.value) || '');
      if (Number.isNaN(from) || Number.isNaN(to)) {
        fill(out, problemView({ heading: 'Not accepted as entered.', detail: 'Give a start and an end date.' }));
        return;
      }
    }
    loadHistory(out, state, { from, to, followsNow: Boolean(span), field: sensor.value, sensor });
  });
  fillSensors(sensor, state.latestPoint ? [state.latestPoint] : [], 'speed_kmh');
  form.requestSubmit();
}

// Every chartable field the points carry (their own fields first, then named sensors).
function fillSensors(select, points, keep) {
  const seen = new Set();
  for (const p of points) {
    for (const [key] of FIELDS) if (p[key] !== undefined) seen.add(key);
    for (const name of Object.keys(p.sensors || {})) seen.add(`sensors.${name}`);
  }
  if (keep) seen.add(keep);
  const options = [...FIELDS.filter(([key]) => seen.has(key)).map(([key, label, unit]) => [key, `${label} (${unit})`]),
    ...[...seen].filter((k) => k.startsWith('sensors.')).sort().map((k) => [k, k.slice(8)])];
  fill(select, options.map(([key, label]) => h('option', { value: key, selected: key === keep }, label)));
}

function valueOf(p, field) {
  const v = field.startsWith('sensors.') ? (p.sensors || {})[field.slice(8)] : p[field];
  return typeof v === 'number' ? v : undefined;
}

async function loadHistory(out, state, range) {
  fill(out, h('p', { class: 'muted', 'aria-busy': 'true' }, 'Reading the history…'));
  const points = [];
  let cursor = null;
  let truncated = false;
  try {
    do {
      const page = await api('GET', state.path('/telemetry', {
        from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), limit: 1000, cursor,
      }));
      points.push(...page.items);
      cursor = page.next_cursor || null;
      truncated = Boolean(cursor) && points.length >= MAX_READINGS;
    } while (cursor && !truncated);
  } catch (error) {
    fill(out, problemView(error));
    return;
  }
  fillSensors(range.sensor, points, range.field);
  const chartBox = h('div', { id: 'chart-box' });
  const trackBox = h('div', { id: 'track-box' });
  const count = h('p', { class: 'muted', id: 'history-count' });
  fill(out, count, h('h3', {}, 'Chart'), chartBox, h('h3', {}, 'Track'),
    h('p', { class: 'muted', id: 'track-note' }, state.tileUrl
      ? `Positions on map tiles from ${new URL(state.tileUrl.replace(/[{}]/g, '')).origin}, as the gateway's operator set.`
      : 'Positions on a plain grid of degrees: the console loads no map tiles.'), trackBox);
  const draw = () => {
    const label = range.sensor.selectedOptions[0]?.textContent || range.field;
    const samples = points.map((p) => ({ t: p.ts_ms, v: valueOf(p, range.field) })).filter((p) => p.v !== undefined);
    fill(count, `${points.length} ${points.length === 1 ? 'reading' : 'readings'} from ${showTime(new Date(range.from).toISOString())} to ${showTime(new Date(range.to).toISOString())}`,
      truncated ? ` (the first ${points.length} only: choose a shorter range to see all)` : '');
    fill(chartBox, samples.length ? lineChart(samples, { from: range.from, to: range.to, label })
      : h('p', { class: 'empty', id: 'no-readings' }, `No ${label} readings in this range.`));
    const positions = points.filter((p) => typeof p.lat === 'number' && typeof p.lon === 'number');
    fill(trackBox, positions.length ? trackMap(positions, { tileUrl: state.tileUrl })
      : h('p', { class: 'empty', id: 'no-positions' }, 'No positions in this range.'));
  };
  range.sensor.onchange = () => { range.field = range.sensor.value; draw(); };
  state.history = {
    followsNow: range.followsNow,
    add(point) {
      if (points.some((p) => p.ts_ms === point.ts_ms)) return;
      range.to = Math.max(range.to, Date.now(), point.ts_ms + 1);
      points.push(point);
      points.sort((a, b) => a.ts_ms - b.ts_ms);
      draw();
    },
  };
  draw();
}
