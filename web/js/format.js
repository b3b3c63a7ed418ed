// Number, size, time and mint formatting shared by every view. Written by hand (not Intl's
// compact notation) so the output is the same in every browser and locale: "$4.1K".

const UNITS = ['', 'K', 'M', 'B', 'T'];

/** 4108.9 → "4.1K", 586642 → "586.6K", 23850740 → "23.9M", 950 → "950". */
export function compact(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  let v = Math.abs(Number(n));
  const sign = Number(n) < 0 ? '-' : '';
  if (v < 1000) return sign + (v < 10 && v % 1 ? v.toFixed(1) : String(Math.round(v)));
  let unit = 0;
  while (v >= 1000 && unit < UNITS.length - 1) { v /= 1000; unit++; }
  // 999.96K rounds to "1000.0K": move up a unit instead.
  if (Number(v.toFixed(1)) >= 1000 && unit < UNITS.length - 1) { v /= 1000; unit++; }
  return sign + v.toFixed(1).replace(/\.0$/, '') + UNITS[unit];
}

export function usd(n) {
  return n == null || !Number.isFinite(Number(n)) ? '—' : '$' + compact(n);
}

export function int(n) {
  return n == null || !Number.isFinite(Number(n)) ? '—' : Math.round(Number(n)).toLocaleString('en-US');
}

/** 2486795 → "2.4 MB" (1024-based, like file managers). */
export function bytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  let v = Number(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
}

/** 6.04 → "0:06", 3723 → "1:02:03". */
export function duration(seconds) {
  if (seconds == null || !Number.isFinite(Number(seconds))) return '—';
  const t = Math.max(0, Math.floor(Number(seconds)));
  const hh = Math.floor(t / 3600);
  const mm = Math.floor((t % 3600) / 60);
  const ss = String(t % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** Seconds → "3 minutes ago". */
export function ago(seconds) {
  const t = Math.max(0, Math.round(Number(seconds) || 0));
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'} ago`;
  if (t < 60) return plural(t, 'second');
  if (t < 3600) return plural(Math.floor(t / 60), 'minute');
  if (t < 86400) return plural(Math.floor(t / 3600), 'hour');
  return plural(Math.floor(t / 86400), 'day');
}

/** An ISO time as a short local date and time. */
export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

/** "7k13ksm9…Pepump" → "7k13…pump" (full value goes in a title attribute). */
export function shortMint(mint) {
  if (typeof mint !== 'string') return '—';
  return mint.length > 12 ? `${mint.slice(0, 4)}…${mint.slice(-4)}` : mint;
}

/** A Solana mint id as haven accepts it: 32–44 base58 characters. */
export function isMint(value) {
  return typeof value === 'string' && /^[1-9A-HJ-NP-Za-km-z]{32,44}$/.test(value);
}
