// Entry point: a hash router over three views. Each view's mount(container, params) builds its
// DOM and returns an unmount function that stops its timers, sockets and requests.
import { mountBrowser } from './browser.js';
import { mountPlayer } from './player.js';
import { mountRecordings } from './recordings.js';

const routes = [
  // #/watch/<mint>?mode=jpeg|encoded|auto (see web/README.md: the player's modes)
  { pattern: /^#\/watch\/([^/?#]+)\/?(?:\?([^#]*))?$/, nav: 'streams',
    mount: (el, m) => mountPlayer(el, decodeURIComponent(m[1]), new URLSearchParams(m[2] || '')) },
  { pattern: /^#\/recordings\/?$/, nav: 'recordings', mount: (el) => mountRecordings(el) },
  { pattern: /^(#\/?)?$/, nav: 'streams', mount: (el) => mountBrowser(el) },
];

const view = document.getElementById('view');
let unmount = null;
let firstRoute = true;

function route() {
  const hash = location.hash;
  const match = routes.find((r) => r.pattern.test(hash));
  if (!match) {
    // Unknown hash: show the stream browser under its canonical address.
    location.replace('#/');
    return;
  }
  if (unmount) {
    try { unmount(); } catch (err) { console.error('unmount failed', err); }
    unmount = null;
  }
  view.replaceChildren();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === match.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  unmount = match.mount(view, hash.match(match.pattern)) || null;
  // After a navigation, move keyboard/screen-reader focus to the new view's heading (not on the
  // first load, where the browser's default focus is right).
  if (!firstRoute) {
    const heading = view.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
  firstRoute = false;
}

window.addEventListener('hashchange', route);
route();
