// The recordings page (#/recordings): GET /api/recordings as a table (cards on phones), with
// downloads and delete. Refreshes itself while a recording is being written.
import { api, apiToken } from './api.js';
import { h, isAbort } from './dom.js';
import * as fmt from './format.js';

const LIMIT = 100;
const LIVE_REFRESH_MS = 3000;    // while any row is "recording": size and duration grow
const IDLE_REFRESH_MS = 30_000;  // otherwise, to notice recordings started elsewhere

export function mountRecordings(root) {
  const aborter = new AbortController();
  let timer = 0;
  let loading = false;
  const rows = new Map();   // id → {tr, key}: unchanged rows are kept (focus stays put)

  const refreshBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'recordings-refresh', onclick: () => load() }, 'Refresh');
  const message = h('div', { class: 'banner', 'data-testid': 'recordings-message', hidden: true, role: 'status' });
  const summary = h('p', { class: 'muted', 'data-testid': 'recordings-summary' }, '\u00a0');
  const tbody = h('tbody');
  const table = h('table', { class: 'rec-table', 'data-testid': 'recordings-table', 'aria-busy': 'true' },
    h('caption', { class: 'visually-hidden' }, 'Recordings, newest first'),
    h('thead', {}, h('tr', {},
      ['Stream', 'Started', 'Duration', 'Size', 'Status', 'Files', ''].map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Actions'))))),
    tbody);
  const empty = h('div', { class: 'empty', 'data-testid': 'recordings-empty', hidden: true },
    h('p', { class: 'empty-title' }, 'No recordings yet'),
    h('p', { class: 'muted' }, 'Open a stream and press Record to keep a copy here.'));

  root.append(h('section', { class: 'recordings', 'aria-labelledby': 'rec-title' },
    h('div', { class: 'page-head' }, h('h1', { id: 'rec-title' }, 'Recordings'), refreshBtn),
    summary,
    message,
    h('div', { class: 'table-wrap' }, table),
    empty));

  load();

  function showMessage(text, kind = 'error') {
    message.hidden = !text;
    message.className = `banner banner-${kind === 'error' ? 'error' : 'warn'}`;
    message.textContent = text || '';
  }

  async function load() {
    if (loading) return;
    loading = true;
    clearTimeout(timer);
    table.setAttribute('aria-busy', 'true');
    let live = false;
    try {
      const { data } = await api('/api/recordings', { query: { limit: LIMIT }, signal: aborter.signal });
      const list = Array.isArray(data?.recordings) ? data.recordings : [];
      render(list);
      live = list.some((r) => r.status === 'recording');
      const total = Number(data?.total ?? list.length);
      summary.textContent = total > list.length
        ? `Showing the newest ${list.length} of ${total} recordings`
        : `${total} recording${total === 1 ? '' : 's'}`;
      if (message.dataset.kind === 'load') showMessage('');
    } catch (err) {
      if (isAbort(err)) return;
      showMessage(`Could not load recordings: ${err.message}`);
      message.dataset.kind = 'load';
    } finally {
      loading = false;
      table.setAttribute('aria-busy', 'false');
    }
    if (!aborter.signal.aborted) timer = setTimeout(load, live ? LIVE_REFRESH_MS : IDLE_REFRESH_MS);
  }

  function render(list) {
    const seen = new Set();
    let prev = null;
    for (const rec of list) {
      seen.add(rec.id);
      const key = JSON.stringify(rec);
      let entry = rows.get(rec.id);
      if (!entry || entry.key !== key) {
        const tr = row(rec);
        if (entry) entry.tr.replaceWith(tr);
        entry = { tr, key };
        rows.set(rec.id, entry);
      }
      // Put the row after the previous one (a no-op when the order did not change).
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== entry.tr) tbody.insertBefore(entry.tr, want);
      prev = entry.tr;
    }
    for (const [id, entry] of rows) {
      if (!seen.has(id)) { entry.tr.remove(); rows.delete(id); }
    }
    empty.hidden = list.length > 0;
    table.hidden = list.length === 0;
  }

  function row(rec) {
    const files = [['video', 'Video'], ['audio', 'Audio']]
      .map(([kind, label]) => {
        const f = rec.files?.[kind];
        if (!f?.url) return null;
        const ext = (f.name || '').split('.').pop();
        // A link cannot send a header: with an API token set, it goes as ?token= (GET only).
        const href = apiToken ? `${f.url}${f.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(apiToken)}` : f.url;
        return h('a', {
          href, download: f.name || '', class: 'file-link', 'data-testid': `download-${kind}`,
          title: f.name || undefined,
        }, `${label}${ext ? ` (${ext})` : ''}`, f.bytes != null ? h('span', { class: 'muted' }, ` ${fmt.bytes(f.bytes)}`) : null);
      })
      .filter(Boolean);
    const del = h('button', {
      type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'recording-delete',
      'aria-label': `Delete recording ${rec.id}`, onclick: () => remove(rec, del),
    }, 'Delete');
    // While a recording is written its row has bytes/duration 0; the files and the clock know more.
    const live = rec.status === 'recording';
    const fileBytes = (rec.files?.video?.bytes || 0) + (rec.files?.audio?.bytes || 0);
    const size = live ? Math.max(rec.bytes || 0, fileBytes) : rec.bytes;
    const started = Date.parse(rec.start_time);
    const secs = live && !rec.duration_seconds && Number.isFinite(started) ? (Date.now() - started) / 1000 : rec.duration_seconds;
    const codec = [rec.stored_video_codec || rec.video_codec, rec.audio_codec].filter(Boolean).join(' + ');
    // One wrapper per cell: on phones each cell is a two-column "label: value" grid.
    const td = (label, ...content) => h('td', { 'data-label': label, class: label === 'Actions' ? 'actions' : null }, h('div', { class: 'cell' }, content));
    return h('tr', { 'data-testid': 'recording-row', 'data-id': rec.id, 'data-status': rec.status },
      td('Stream',
        h('a', { href: `#/watch/${rec.mint_id}`, title: rec.mint_id, class: 'mint' }, fmt.shortMint(rec.mint_id)),
        h('div', { class: 'muted small' }, `#${rec.id}`, codec ? ` · ${codec}` : '', rec.width && rec.height ? ` · ${rec.width}×${rec.height}` : '')),
      td('Started', h('time', { datetime: rec.start_time || '' }, fmt.dateTime(rec.start_time))),
      td('Duration', fmt.duration(secs)),
      td('Size', fmt.bytes(size)),
      td('Status',
        h('span', { class: `pill pill-${rec.status}`, 'data-testid': 'recording-status' }, rec.status),
        rec.error ? h('div', { class: 'rec-error small', 'data-testid': 'recording-error' }, rec.error) : null,
        rec.dropped_packets ? h('div', { class: 'muted small' }, `${fmt.int(rec.dropped_packets)} packets dropped`) : null),
      td('Files', files.length ? h('div', { class: 'files' }, files) : h('span', { class: 'muted' }, 'none')),
      td('Actions', del));
  }

  async function remove(rec, btn) {
    if (!window.confirm(`Delete recording #${rec.id} of ${fmt.shortMint(rec.mint_id)} and its files?`)) return;
    btn.disabled = true;
    try {
      await api(`/api/recordings/${rec.id}`, { method: 'DELETE', signal: aborter.signal });
      showMessage(`Recording #${rec.id} deleted.`, 'info');
      message.dataset.kind = 'delete';
    } catch (err) {
      if (isAbort(err)) return;
      // 409: still being written. Say so and point at the way out.
      showMessage(err.status === 409
        ? `Recording #${rec.id} is still being written (${err.message}). Stop it with Record in its player first.`
        : `Could not delete recording #${rec.id}: ${err.message}`);
      message.dataset.kind = 'delete';
      btn.disabled = false;
    }
    load();
  }

  return () => {
    aborter.abort();
    clearTimeout(timer);
  };
}
