// Our own small SVG drawing for flow 5: a line chart of one sensor over time, and a track
// of positions on a plain grid. No library and nothing loaded from outside (the CSP allows
// only this origin): every shape is an SVG element built here, every label a text node.

import { offsetOf } from './time.js';

const SVG = 'http://www.w3.org/2000/svg';
const pad = (n) => String(n).padStart(2, '0');

// s('line', {x1: 0, ...}, children...) -> an SVG element (attributes set verbatim).
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// About `count` round values covering [lo, hi] (1, 2 or 5 times a power of ten apart).
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

// Labels for `ticks` with as many decimals as their step needs (0.005 apart: three), so
// neighbouring labels never read alike.
export function tickFormat(ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return (v) => v.toFixed(decimals);
}

// Time ticks at round local steps (minutes to days) across [from, to] (ms since epoch).
const TIME_STEPS = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 7 * 86400e3];
export function timeTicks(from, to, count = 6) {
  const span = to - from;
  const step = TIME_STEPS.find((candidate) => span / candidate <= count) || TIME_STEPS[TIME_STEPS.length - 1];
  // Round in the browser's zone, so ticks fall on local hours and midnights.
  const offset = -new Date(from).getTimezoneOffset() * 60e3;
  const ticks = [];
  for (let t = Math.ceil((from + offset) / step) * step - offset; t <= to; t += step) ticks.push(t);
  return { ticks, step };
}

function tickLabel(t, step) {
  const d = new Date(t);
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (step < 86400e3 && !(d.getHours() === 0 && d.getMinutes() === 0)) return clock;
  return `${pad(d.getDate())}.${pad(d.getMonth() + 1)}.`;
}

// A line chart of samples [{t, v}] (t ms, v number) over [from, to]: axes with round
// ticks, the time axis in the browser's zone (its offset named under it), one dot per
// sample when there are few. `label` names the series (with its unit).
export function lineChart(samples, { from, to, label, width = 760, height = 280 }) {
  const m = { left: 56, right: 16, top: 16, bottom: 44 };
  const w = width - m.left - m.right;
  const hgt = height - m.top - m.bottom;
  const values = samples.map((p) => p.v);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const yTicks = niceTicks(lo, hi);
  const yLabel = tickFormat(yTicks);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks[yTicks.length - 1]);
  const x = (t) => m.left + ((t - from) / (to - from)) * w;
  const y = (v) => m.top + hgt - ((v - lo) / (hi - lo)) * hgt;
  const { ticks, step } = timeTicks(from, to);
  const path = samples.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  return s('svg', {
    class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': `${label}: ${samples.length} readings`,
  },
  s('title', {}, label),
  yTicks.map((v) => s('g', { class: 'tick y' },
    s('line', { x1: m.left, x2: m.left + w, y1: y(v), y2: y(v) }),
    s('text', { x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, yLabel(v)))),
  ticks.map((t) => s('g', { class: 'tick x' },
    s('line', { x1: x(t), x2: x(t), y1: m.top, y2: m.top + hgt }),
    s('text', { x: x(t), y: m.top + hgt + 16, 'text-anchor': 'middle' }, tickLabel(t, step)))),
  s('text', { class: 'axis-note', x: m.left + w, y: height - 6, 'text-anchor': 'end' },
    `time in your zone (UTC${offsetOf(new Date(to))})`),
  s('rect', { class: 'frame', x: m.left, y: m.top, width: w, height: hgt }),
  s('path', { class: 'series', d: path }),
  samples.length <= 120 ? samples.map((p) => s('circle', { class: 'dot', cx: x(p.t), cy: y(p.v), r: 2.5 })) : null);
}

export function formatNumber(v) {
  if (Math.abs(v) >= 1000 || Number.isInteger(v)) return String(Math.round(v * 100) / 100);
  return String(Number(v.toPrecision(4)));
}

// Web Mercator (the projection of map tiles) as fractions of the world: x and y in [0, 1].
const mercX = (lon) => (lon + 180) / 360;
const mercY = (lat) => {
  const r = (Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180;
  return (1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2;
};
const lonOf = (x) => x * 360 - 180;
const latOf = (y) => (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
const MAX_ZOOM = 19;

// The track of positions [{lat, lon}]: the path, the first position (a ring) and the last
// (a filled dot), on a grid of round degrees. With `tileUrl` (`--map-tile-url`, an
// {z}/{x}/{y} template) the map tiles under it are drawn too, at the zoom that fits the
// track; without it nothing is loaded from anywhere.
export function trackMap(positions, { width = 760, height = 360, tileUrl = null } = {}) {
  const m = 36;
  const xs = positions.map((p) => mercX(p.lon));
  const ys = positions.map((p) => mercY(p.lat));
  // At least about 200 m across, so a parked machine is not a single pixel.
  const minSpan = 0.002 / 360;
  const spanX = Math.max(Math.max(...xs) - Math.min(...xs), minSpan);
  const spanY = Math.max(Math.max(...ys) - Math.min(...ys), minSpan);
  const cx = (Math.max(...xs) + Math.min(...xs)) / 2;
  const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  let scale = Math.min((width - 2 * m) / spanX, (height - 2 * m) / spanY);
  const zoom = Math.max(0, Math.min(MAX_ZOOM, Math.floor(Math.log2(scale / 256))));
  // Tiles are drawn at their own size: the scale is then the zoom's exactly.
  if (tileUrl) scale = 256 * 2 ** zoom;
  const x = (wx) => width / 2 + (wx - cx) * scale;
  const y = (wy) => height / 2 + (wy - cy) * scale;
  const [left, right] = [cx - width / 2 / scale, cx + width / 2 / scale];
  const [top, bottom] = [cy - height / 2 / scale, cy + height / 2 / scale];
  const lonTicks = niceTicks(lonOf(left), lonOf(right), 6);
  const latTicks = niceTicks(latOf(bottom), latOf(top), 5);
  const [lonLabel, latLabel] = [tickFormat(lonTicks), tickFormat(latTicks)];
  const line = positions.map((p, i) => `${i ? 'L' : 'M'}${x(xs[i]).toFixed(1)},${y(ys[i]).toFixed(1)}`).join(' ');
  const last = positions.length - 1;
  return s('svg', {
    class: 'track', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': `Track of ${positions.length} positions`,
  },
  s('rect', { class: 'ground', x: 0, y: 0, width, height }),
  tileUrl ? tiles(tileUrl, zoom, { left, right, top, bottom }, (tx, ty) => [x(tx), y(ty)]) : null,
  lonTicks.map((lon) => s('g', { class: 'tick x' },
    s('line', { x1: x(mercX(lon)), x2: x(mercX(lon)), y1: 0, y2: height }),
    s('text', { x: x(mercX(lon)) + 3, y: height - 4 }, `${lonLabel(lon)}°`))),
  latTicks.map((lat) => s('g', { class: 'tick y' },
    s('line', { x1: 0, x2: width, y1: y(mercY(lat)), y2: y(mercY(lat)) }),
    s('text', { x: 4, y: y(mercY(lat)) - 3 }, `${latLabel(lat)}°`))),
  s('path', { class: 'route', d: line }),
  s('circle', { class: 'start', cx: x(xs[0]), cy: y(ys[0]), r: 6 }, s('title', {}, 'First position')),
  s('circle', { class: 'end', cx: x(xs[last]), cy: y(ys[last]), r: 6 }, s('title', {}, 'Last position')));
}

// The tiles of `zoom` that cover the view (world fractions), as SVG images.
function tiles(template, zoom, view, place) {
  const n = 2 ** zoom;
  const out = [];
  for (let ty = Math.max(0, Math.floor(view.top * n)); ty <= Math.min(n - 1, Math.floor(view.bottom * n)); ty += 1) {
    for (let tx = Math.floor(view.left * n); tx <= Math.floor(view.right * n); tx += 1) {
      const [px, py] = place(tx / n, ty / n);
      const href = template.replace('{z}', zoom).replace('{x}', ((tx % n) + n) % n).replace('{y}', ty);
      out.push(s('image', { class: 'tile', href, x: px, y: py, width: 256, height: 256, preserveAspectRatio: 'none' }));
    }
  }
  return out;
}
