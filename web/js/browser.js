// The stream browser (#/): Live / Popular tabs, NSFW toggle, search, stats bar, card grid,
// stale-data banner and error state.
import { api, ApiError } from './api.js';
import { h, s as svg, fill, safeUrl, isAbort } from './dom.js';
import * as fmt from './format.js';

const PAGE = 60;            // /live page size (haven's default)
const POPULAR_LIMIT = 50;   // /popular maximum
const AUTO_REFRESH_MS = 30_000;

// Survives route changes, so coming back from the player shows the last list at once (no empty
// flash, no layout shift) while a fresh one loads.
const state = {
  tab: 'live',
  nsfw: false,          // off by default: include_nsfw=false and NSFW cards hidden
  query: '',
  lists: { live: null, popular: null },   // {items, meta, more, nsfw} per tab
  stats: null,
};

const TABS = [
  { id: 'live', label: 'Live' },
  { id: 'popular', label: 'Popular' },
];

export function mountBrowser(root) {
  let loadAbort = null;
  let lookupAbort = null;
  let lookupTimer = 0;
  let staleTimer = 0;
  let loading = false;
  let renderedKey = '';

  // ---- DOM ----------------------------------------------------------------------------------
  const tabButtons = TABS.map((t) => h('button', {
    type: 'button', role: 'tab', id: `tab-${t.id}`, 'data-testid': `tab-${t.id}`,
    'aria-controls': 'stream-grid', class: 'tab', onclick: () => selectTab(t.id),
  }, t.label));
  const tablist = h('div', { role: 'tablist', 'aria-label': 'Stream lists', class: 'tabs' }, tabButtons);
  tablist.addEventListener('keydown', onTabKey);

  const search = h('input', {
    type: 'search', 'data-testid': 'search', class: 'search-input', id: 'stream-search',
    placeholder: 'Search name, symbol or mint', autocomplete: 'off', spellcheck: 'false',
    'aria-controls': 'stream-grid', value: state.query,
  });
  search.addEventListener('input', () => { state.query = search.value; render(); });

  const nsfwToggle = h('input', { type: 'checkbox', 'data-testid': 'nsfw-toggle', id: 'nsfw-toggle' });
  nsfwToggle.checked = state.nsfw;
  nsfwToggle.addEventListener('change', () => {
    state.nsfw = nsfwToggle.checked;
    render();                // hide/show what we have at once
    load();                  // and ask haven for the list with the new include_nsfw
  });

  const refreshBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'refresh', onclick: () => load() },
    h('span', { class: 'btn-spinner', 'aria-hidden': 'true' }), h('span', { class: 'btn-label' }, 'Refresh'));

  const stats = h('p', { class: 'stats', 'data-testid': 'stats', 'aria-live': 'polite' }, '\u00a0');
  const banner = h('div', { class: 'banner', 'data-testid': 'banner', hidden: true });
  const grid = h('div', {
    class: 'grid', id: 'stream-grid', 'data-testid': 'grid', role: 'tabpanel', 'aria-busy': 'false',
  });
  const empty = h('div', { class: 'empty', 'data-testid': 'empty', hidden: true, role: 'status' });
  const moreBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'load-more', hidden: true, onclick: () => load({ append: true }) }, 'Load more');

  root.append(h('section', { class: 'browser', 'aria-labelledby': 'browser-title' },
    h('h1', { id: 'browser-title', class: 'visually-hidden' }, 'Live streams'),
    h('div', { class: 'toolbar' },
      tablist,
      h('div', { class: 'search' },
        h('label', { for: 'stream-search', class: 'visually-hidden' }, 'Search streams'),
        search),
      h('label', { class: 'switch', for: 'nsfw-toggle' }, nsfwToggle, h('span', {}, 'Show NSFW')),
      refreshBtn),
    stats,
    banner,
    grid,
    empty,
    h('div', { class: 'more' }, moreBtn)));

  syncTabs();
  render();
  load();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible' && !loading) load({ quiet: true });
  }, AUTO_REFRESH_MS);

  // ---- tabs ---------------------------------------------------------------------------------
  function syncTabs() {
    for (const b of tabButtons) {
      const on = b.id === `tab-${state.tab}`;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;   // roving tabindex: Tab enters the list, arrows move in it
    }
    grid.setAttribute('aria-labelledby', `tab-${state.tab}`);
  }

  function selectTab(id, focus = false) {
    if (focus) document.getElementById(`tab-${id}`)?.focus();
    if (state.tab === id) return;
    state.tab = id;
    syncTabs();
    render();
    load();
  }

  function onTabKey(ev) {
    const i = TABS.findIndex((t) => t.id === state.tab);
    let next = null;
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') next = (i + 1) % TABS.length;
    else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') next = (i - 1 + TABS.length) % TABS.length;
    else if (ev.key === 'Home') next = 0;
    else if (ev.key === 'End') next = TABS.length - 1;
    if (next == null) return;
    ev.preventDefault();
    selectTab(TABS[next].id, true);
  }

  // ---- loading ------------------------------------------------------------------------------
  async function load({ append = false, quiet = false } = {}) {
    clearTimeout(staleTimer);
    loadAbort?.abort();
    const ctl = new AbortController();
    loadAbort = ctl;
    const signal = ctl.signal;   // unmount aborts loadAbort too
    const tab = state.tab;
    const nsfw = state.nsfw;
    const prev = state.lists[tab];
    setLoading(true, quiet);
    if (!append) loadStats(signal);   // in parallel with the list
    try {
      let items;
      let meta;
      let more = false;
      if (tab === 'live') {
        const offset = append && prev ? prev.items.length : 0;
        // A background refresh re-reads what the person has already paged through (max 100).
        const limit = append ? PAGE : Math.min(100, Math.max(PAGE, quiet && prev ? prev.items.length : PAGE));
        ({ data: items, meta } = await api('/api/pumpfun/live', {
          query: { limit, offset, include_nsfw: nsfw }, signal,
        }));
        more = Array.isArray(items) && items.length === limit;
        if (append && prev) {
          const seen = new Set(prev.items.map((s) => s.mint_id));
          items = prev.items.concat(items.filter((s) => !seen.has(s.mint_id)));
        }
      } else {
        ({ data: items, meta } = await api('/api/pumpfun/popular', {
          query: { limit: POPULAR_LIMIT, include_nsfw: nsfw }, signal,
        }));
      }
      if (!Array.isArray(items)) throw new ApiError(200, 'haven sent an unexpected answer', items, meta);
      state.lists[tab] = { items, meta, more, nsfw, error: null };
      // A stale answer without an upstream error means haven is refreshing in the background
      // right now: ask again shortly to show the new data (or the failure) instead.
      if (meta.cache === 'stale' && !meta.upstreamError && !append) {
        staleTimer = setTimeout(() => load({ quiet: true }), 3000);
      }
    } catch (err) {
      if (isAbort(err)) return;
      // Keep whatever list we had; the banner says it could not be refreshed.
      state.lists[tab] = { ...(prev || { items: [], meta: null, more: false, nsfw }), error: err };
    } finally {
      if (loadAbort === ctl) { loadAbort = null; setLoading(false); }
    }
    render();
  }

  async function loadStats(signal) {
    try {
      const { data } = await api('/api/pumpfun/stats', { signal });
      state.stats = data;
    } catch (err) {
      if (isAbort(err)) return;
      state.stats = { error: err };
    }
    renderStats();
  }

  function setLoading(on, quiet = false) {
    loading = on;
    // aria-busy tells assistive tech (and tests) the grid is being replaced.
    grid.setAttribute('aria-busy', on ? 'true' : 'false');
    refreshBtn.classList.toggle('is-loading', on && !quiet);
    refreshBtn.setAttribute('aria-busy', on ? 'true' : 'false');
    refreshBtn.querySelector('.btn-label').textContent = on && !quiet ? 'Refreshing…' : 'Refresh';
  }

  // ---- rendering ----------------------------------------------------------------------------
  function visibleItems(list) {
    const q = state.query.trim().toLowerCase();
    return list.items.filter((s) => {
      if (!state.nsfw && s.nsfw === true) return false;
      if (!q) return true;
      return [s.name, s.symbol, s.mint_id].some((v) => typeof v === 'string' && v.toLowerCase().includes(q));
    });
  }

  function render() {
    const list = state.lists[state.tab];
    renderBanner(list);
    if (!list) {
      // First load: skeleton cards hold the grid's place so nothing jumps when data lands.
      if (renderedKey !== 'skeleton') {
        renderedKey = 'skeleton';
        grid.replaceChildren(...Array.from({ length: 8 }, () => skeletonCard()));
      }
      empty.hidden = true;
      moreBtn.hidden = true;
      return;
    }
    const items = visibleItems(list);
    // Re-render only when something visible changed, so an auto-refresh does not steal focus
    // from the card the person is on.
    const key = JSON.stringify([state.tab, state.nsfw, items]);
    if (key !== renderedKey) {
      renderedKey = key;
      grid.replaceChildren(...items.map(card));
    }
    moreBtn.hidden = !(state.tab === 'live' && list.more && !state.query.trim());
    renderEmpty(list, items);
  }

  function renderEmpty(list, items) {
    clearTimeout(lookupTimer);
    if (items.length > 0 || (list.error && list.items.length === 0)) {
      empty.hidden = true;
      return;
    }
    const q = state.query.trim();
    empty.hidden = false;
    if (!q) {
      const hidden = list.items.filter((s) => s.nsfw === true).length;
      fill(empty,
        h('p', { class: 'empty-title' }, 'No live streams right now'),
        hidden && !state.nsfw ? h('p', { class: 'muted' }, `${hidden} NSFW stream${hidden === 1 ? ' is' : 's are'} hidden.`) : null);
      return;
    }
    empty.replaceChildren(h('p', { class: 'empty-title' }, `No streams match “${q}”`));
    // A pasted mint that is not in this list may still be a stream pump.fun knows: look it up.
    if (fmt.isMint(q)) {
      const out = h('div', { class: 'lookup', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Looking up this mint on pump.fun…'));
      empty.append(out);
      lookupTimer = setTimeout(() => lookup(q, out), 250);
    }
  }

  async function lookup(mint, out) {
    lookupAbort?.abort();
    lookupAbort = new AbortController();
    try {
      const { data } = await api(`/api/pumpfun/stream/${encodeURIComponent(mint)}`, { signal: lookupAbort.signal });
      const live = data.is_currently_live === true;
      fill(out,
        h('p', {}, h('strong', {}, data.name || fmt.shortMint(mint)), data.symbol ? ` (${data.symbol})` : '',
          live ? ' is live.' : ' is not live right now.'),
        live ? h('a', { class: 'btn btn-primary', href: `#/watch/${mint}`, 'data-testid': 'open-stream' }, 'Open stream') : null);
    } catch (err) {
      if (isAbort(err)) return;
      out.replaceChildren(h('p', { class: 'muted' }, err.message));
    }
  }

  function renderBanner(list) {
    const err = list?.error;
    const meta = list?.meta;
    banner.className = 'banner';
    if (err) {
      // Nothing usable (or the refresh failed): say why and offer a retry.
      const cached = list.items.length > 0;
      banner.classList.add('banner-error');
      banner.setAttribute('role', 'alert');
      fill(banner,
        h('div', { class: 'banner-text' },
          h('strong', {}, cached ? 'Could not refresh the list. ' : 'Streams are unavailable. '),
          h('span', { 'data-testid': 'banner-detail' }, err.message),
          err.meta?.retryAfter ? h('span', { class: 'muted' }, ` haven will ask pump.fun again in ${err.meta.retryAfter} s.`) : null),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'retry', onclick: () => load() }, 'Retry'));
      banner.hidden = false;
    } else if (meta?.cache === 'stale') {
      const when = meta.age != null ? fmt.ago(meta.age) : 'a while ago';
      banner.classList.add(meta.upstreamError ? 'banner-warn' : 'banner-info');
      banner.setAttribute('role', 'status');
      banner.replaceChildren(h('div', { class: 'banner-text' },
        meta.upstreamError
          ? `pump.fun is unreachable — showing data from ${when}`
          : `Showing data from ${when} — refreshing from pump.fun`,
        meta.upstreamError ? h('span', { class: 'muted banner-why' }, ` (${meta.upstreamError})`) : null));
      banner.hidden = false;
    } else {
      banner.hidden = true;
      banner.replaceChildren();
    }
  }

  function renderStats() {
    const st = state.stats;
    if (!st) return;
    if (st.error) {
      stats.textContent = 'Stats unavailable';
      return;
    }
    const parts = [
      h('span', {}, h('strong', {}, fmt.int(st.total_live_streams)), ' live'),
      h('span', {}, h('strong', {}, fmt.int(st.total_participants)), ' watching'),
      h('span', {}, `${fmt.int(st.sfw_streams)} SFW · ${fmt.int(st.nsfw_streams)} NSFW`),
    ];
    if (st.top_stream) {
      parts.push(h('span', { class: 'stats-top' }, 'Top: ',
        h('a', { href: `#/watch/${st.top_stream.mint_id}` }, st.top_stream.name || fmt.shortMint(st.top_stream.mint_id)),
        ` (${fmt.int(st.top_stream.num_participants)})`));
    }
    stats.replaceChildren(...parts);
  }

  return () => {
    loadAbort?.abort();
    lookupAbort?.abort();
    clearTimeout(lookupTimer);
    clearTimeout(staleTimer);
    clearInterval(timer);
  };
}

// ---- cards ----------------------------------------------------------------------------------

function eyeIcon() {
  return svg('svg', { class: 'icon', viewBox: '0 0 24 24', width: 14, height: 14, 'aria-hidden': 'true' },
    svg('path', { d: 'M12 5C6.5 5 2.7 9.4 1.5 12c1.2 2.6 5 7 10.5 7s9.3-4.4 10.5-7C21.3 9.4 17.5 5 12 5zm0 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8z', fill: 'currentColor' }));
}

function skeletonCard() {
  return h('div', { class: 'card card-skeleton', 'aria-hidden': 'true' },
    h('div', { class: 'thumb' }), h('div', { class: 'card-body' }, h('span', { class: 'sk-line' }), h('span', { class: 'sk-line short' })));
}

function card(s) {
  const name = s.name || fmt.shortMint(s.mint_id);
  const thumb = h('div', { class: 'thumb' },
    // The placeholder sits under the image: visible while it loads and when it fails.
    h('span', { class: 'thumb-fallback', 'aria-hidden': 'true' }, (s.symbol || name || '?').slice(0, 4).toUpperCase()));
  const sources = [safeUrl(s.thumbnail), safeUrl(s.image_uri)].filter(Boolean);
  if (sources.length) {
    const img = h('img', {
      src: sources.shift(), alt: '', loading: 'lazy', decoding: 'async', width: 320, height: 180,
      referrerpolicy: 'no-referrer',
    });
    img.addEventListener('error', () => {
      const next = sources.shift();
      if (next) img.src = next; else img.remove();
    });
    thumb.append(img);
  }
  if (s.is_currently_live !== false) thumb.append(h('span', { class: 'badge badge-live' }, 'LIVE'));
  if (s.nsfw === true) thumb.append(h('span', { class: 'badge badge-nsfw' }, 'NSFW'));

  return h('a', {
    class: 'card', href: `#/watch/${s.mint_id}`, 'data-testid': 'stream-card',
    'data-mint': s.mint_id, 'data-nsfw': s.nsfw === true ? 'true' : 'false',
  },
  thumb,
  h('div', { class: 'card-body' },
    h('h2', { class: 'card-title', title: name }, name),
    h('p', { class: 'card-meta' },
      s.symbol ? h('span', { class: 'symbol' }, `$${s.symbol}`) : null,
      h('span', { class: 'viewers', title: 'Viewers' },
        eyeIcon(), h('span', { class: 'visually-hidden' }, 'Viewers: '), fmt.int(s.num_participants)),
      h('span', { class: 'mcap', title: 'USD market cap' },
        h('span', { class: 'visually-hidden' }, 'Market cap: '), fmt.usd(s.usd_market_cap)))));
}
