// Inline SVG line chart of a stream's history: viewers (left axis) and USD market cap (right
// axis) over time. Drawn by hand: no chart library for two lines.
import { h, s } from './dom.js';
import * as fmt from './format.js';

// The SVG is drawn at the box's own pixel width (1 unit = 1 CSS px), so labels stay 11 px at
// any size; a ResizeObserver redraws it when the box width changes.
const H = 190;
const M = { top: 26, right: 54, bottom: 28, left: 42 };
const observed = new WeakMap();   // element → {points, hours, width}

function watchSize(el) {
  if (observed.has(el) || typeof ResizeObserver !== 'function') return;
  const ro = new ResizeObserver(() => {
    const last = observed.get(el);
    if (last && el.isConnected && Math.abs(el.clientWidth - last.width) > 8) draw(el, last.points, last.hours);
  });
  ro.observe(el);
}

/** About `count` round tick values covering [min, max]. */
function ticks(min, max, count = 4) {
  // A flat series still gets distinct labels: widen it by 10% of its value around itself.
  if (!(max > min)) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
    if (min < 0 && max - pad >= 0) min = 0;
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((st) => st >= raw) || raw;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const out = [];
  for (let v = lo; v <= hi + step / 2; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** "M x y L x y …", breaking the line where a value is missing. */
function path(points, x, y, key) {
  let d = '';
  let pen = false;
  for (const p of points) {
    const v = p[key];
    if (v == null || !Number.isFinite(v)) { pen = false; continue; }
    d += `${pen ? 'L' : 'M'}${x(p.ms).toFixed(1)} ${y(v).toFixed(1)} `;
    pen = true;
  }
  return d.trim();
}

/**
 * Renders into `el` (the [data-testid=history-chart] element). points: the history answer's
 * points, oldest first. Fewer than two usable points give an empty state instead.
 */
export function renderHistory(el, points, { hours = 24 } = {}) {
  watchSize(el);
  draw(el, points, hours);
}

function draw(el, points, hours) {
  const W = Math.max(260, Math.round(el.clientWidth) || 320);
  observed.set(el, { points, hours, width: W });
  const pts = (Array.isArray(points) ? points : [])
    .map((p) => ({ ...p, ms: Date.parse(p.t) }))
    .filter((p) => Number.isFinite(p.ms))
    .sort((a, b) => a.ms - b.ms);
  if (pts.length < 2) {
    el.dataset.state = 'empty';
    el.replaceChildren(h('p', { class: 'chart-empty' },
      pts.length ? 'Only one snapshot so far — the chart needs at least two.' : `No history for the last ${hours} hours yet.`));
    return;
  }
  el.dataset.state = 'ready';

  const t0 = pts[0].ms;
  const t1 = pts[pts.length - 1].ms;
  const viewers = pts.map((p) => p.num_participants).filter(Number.isFinite);
  const caps = pts.map((p) => p.usd_market_cap).filter(Number.isFinite);
  const vTicks = ticks(0, Math.max(1, ...viewers));
  const cTicks = caps.length ? ticks(Math.min(...caps), Math.max(...caps)) : [0, 1];

  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const x = (ms) => M.left + (t1 > t0 ? ((ms - t0) / (t1 - t0)) * iw : iw / 2);
  const scale = (lo, hi) => (v) => M.top + ih - ((v - lo) / (hi - lo || 1)) * ih;
  const yV = scale(vTicks[0], vTicks[vTicks.length - 1]);
  const yC = scale(cTicks[0], cTicks[cTicks.length - 1]);

  const nx = W < 420 ? 3 : 5;
  const xTicks = Array.from({ length: nx }, (_, i) => t0 + ((t1 - t0) * i) / (nx - 1));
  const span = t1 - t0;
  const xLabel = (ms) => {
    if (span > 36 * 3600e3) return new Date(ms).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
    // Minutes alone would repeat the same label over a short history.
    if (span < 10 * 60e3) return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    return fmt.clock(ms);
  };

  const last = pts[pts.length - 1];
  const summary = `Viewers and USD market cap from ${fmt.clock(t0)} to ${fmt.clock(t1)}: ` +
    `viewers ${fmt.int(Math.min(...viewers))}–${fmt.int(Math.max(...viewers))}, now ${fmt.int(last.num_participants)}; ` +
    (caps.length ? `market cap ${fmt.usd(Math.min(...caps))}–${fmt.usd(Math.max(...caps))}, now ${fmt.usd(last.usd_market_cap)}.` : 'no market cap data.');

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': summary, preserveAspectRatio: 'xMidYMid meet' },
    s('title', {}, summary),
    // grid lines and left (viewers) axis
    vTicks.map((v) => s('g', { class: 'tick' },
      s('line', { x1: M.left, x2: W - M.right, y1: yV(v), y2: yV(v), class: 'grid-line' }),
      s('text', { x: M.left - 6, y: yV(v), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'axis-label axis-viewers' }, fmt.compact(v)))),
    // right (market cap) axis
    cTicks.map((v) => s('text', { x: W - M.right + 6, y: yC(v), 'dominant-baseline': 'middle', class: 'axis-label axis-cap' }, fmt.usd(v))),
    // time axis
    xTicks.map((ms, i) => s('text', {
      x: x(ms), y: H - M.bottom + 18, class: 'axis-label',
      'text-anchor': i === 0 ? 'start' : i === xTicks.length - 1 ? 'end' : 'middle',
    }, xLabel(ms))),
    s('line', { x1: M.left, x2: W - M.right, y1: M.top + ih, y2: M.top + ih, class: 'axis-line' }),
    // axis titles
    s('text', { x: 2, y: 11, class: 'axis-title axis-viewers' }, 'viewers'),
    s('text', { x: W - 2, y: 11, 'text-anchor': 'end', class: 'axis-title axis-cap' }, 'USD market cap'),
    // the two series
    caps.length ? s('path', { d: path(pts, x, yC, 'usd_market_cap'), class: 'series series-cap' }) : null,
    s('path', { d: path(pts, x, yV, 'num_participants'), class: 'series series-viewers' }));

  el.replaceChildren(svg,
    h('ul', { class: 'legend' },
      h('li', { class: 'legend-viewers' }, 'Viewers'),
      h('li', { class: 'legend-cap' }, 'USD market cap')));
}
