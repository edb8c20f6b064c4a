/**
 * The files the dashboard page loads, served by the dashboard's router from
 * the service itself (the policy allows scripts and styles from 'self' only,
 * none inline). They live in the code rather than on disk so that every
 * runtime and the single-file bundle serve them alike, with nothing to copy
 * into an image. No build step: the script is plain browser JavaScript.
 */

/**
 * Keeps the page live: listens to the page's stream (`data-stream` on
 * <body>) and swaps in each section the server sent, shows times in the
 * viewer's time zone, says in the status line whether it is live, and
 * reconnects by itself: EventSource retries a dropped stream on its own, and
 * this retries (with back-off) an answer that is not a stream, as while the
 * service restarts. A hidden tab closes its stream, so nobody computes
 * figures that nobody sees.
 */
const SCRIPT = String.raw`'use strict';
(function () {
  var body = document.body;
  var connection = document.querySelector('[data-connection]');
  var shown = {};

  // A section's container; an event's card (event:<id>) sits inside the events section, which may have been replaced.
  function region(name) {
    var found = null;
    document.querySelectorAll('[data-live]').forEach(function (element) {
      if (element.getAttribute('data-live') === name) found = element;
    });
    return found;
  }

  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (element) {
      var at = new Date(element.getAttribute('datetime'));
      if (!isNaN(at.getTime())) element.textContent = at.toLocaleTimeString();
    });
  }

  function say(state, text) {
    if (connection.getAttribute('data-connection') === state) return;
    connection.setAttribute('data-connection', state);
    connection.textContent = text;
  }

  var source = null;
  var retry = null;
  var delay = 1000;

  function close() {
    clearTimeout(retry);
    if (source) source.close();
    source = null;
  }

  function connect() {
    close();
    source = new EventSource(body.getAttribute('data-stream'));
    source.addEventListener('open', function () {
      delay = 1000;
      say('live', 'Live updates: on');
    });
    source.addEventListener('snapshot', function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      var sections = message.sections || {};
      // The list of events first: the cards that come with it go into its places.
      var names = Object.keys(sections).sort(function (a, b) {
        return (b === 'events') - (a === 'events');
      });
      names.forEach(function (name) {
        var element = region(name);
        if (!element || shown[name] === sections[name]) return;
        if (name === 'events') {
          Object.keys(shown).forEach(function (card) {
            if (card.indexOf('event:') === 0) delete shown[card];
          });
        }
        shown[name] = sections[name];
        element.innerHTML = sections[name];
        localTimes(element);
      });
      say('live', 'Live updates: on');
    });
    source.addEventListener('closing', function () {
      say('reconnecting', 'The service is restarting; reconnecting…');
    });
    source.addEventListener('error', function () {
      if (source && source.readyState === EventSource.CLOSED) {
        // Not a stream (a 401, a 503 while the service restarts): the browser gave up, so try again later.
        say('reconnecting', 'Live updates: lost; retrying…');
        close();
        retry = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      } else {
        say('reconnecting', 'Live updates: reconnecting…');
      }
    });
  }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      close();
      say('paused', 'Live updates: paused while the page is hidden');
    } else {
      connect();
    }
  });

  localTimes(document);
  if (!document.hidden) connect();
})();
`;

/** Light and dark (prefers-color-scheme), one column on a phone, visible focus, no colour-only meaning. */
const STYLESHEET = String.raw`:root {
  color-scheme: light dark;
  --bg: #f6f7f9;
  --panel: #ffffff;
  --text: #1b1f24;
  --muted: #57606a;
  --line: #d0d7de;
  --track: #e4e8ec;
  --sold: #1f6feb;
  --held: #bf8700;
  --available: #1a7f37;
  --bad: #cf222e;
  --focus: #8250df;
  font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  line-height: 1.4;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117;
    --panel: #161b22;
    --text: #e6edf3;
    --muted: #9da7b3;
    --line: #30363d;
    --track: #262c36;
    --sold: #4493f8;
    --held: #d29922;
    --available: #3fb950;
    --bad: #ff7b72;
    --focus: #d2a8ff;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
a { color: var(--sold); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85em; color: var(--muted); }
.skip { position: absolute; left: 0.5rem; top: -3rem; background: var(--panel); padding: 0.5rem 1rem; z-index: 1; }
.skip:focus { top: 0.5rem; }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap;
}
header.top, main, footer { max-width: 80rem; margin: 0 auto; padding: 0 1rem; }
header.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; padding-top: 1rem; }
h1 { font-size: 1.5rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 0 0 0.75rem; }
h3 { font-size: 1rem; margin: 0 0 0.5rem; }
.subtitle { margin: 0; color: var(--muted); }
.connection { margin: 0 0 0 auto; font-size: 0.9rem; color: var(--muted); }
.connection::before { content: '●'; margin-right: 0.35rem; color: var(--muted); }
.connection[data-connection='live']::before { color: var(--available); }
.connection[data-connection='reconnecting']::before { color: var(--bad); }
footer p { color: var(--muted); font-size: 0.85rem; margin: 1rem 0 2rem; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 1rem 0; min-width: 0; }
.overview, .lists { display: grid; gap: 0 1rem; grid-template-columns: 1fr; }
@media (min-width: 60rem) {
  .overview { grid-template-columns: 1fr 1fr; }
  .lists { grid-template-columns: 1fr 1fr; }
}
.figures { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; margin: 0 0 0.75rem; }
.figures dt { font-size: 0.8rem; color: var(--muted); }
.figures dd { margin: 0; font-size: 1.15rem; font-variant-numeric: tabular-nums; font-weight: 600; }
.figures .sold dt::before, .figures .held dt::before, .figures .available dt::before {
  content: ''; display: inline-block; width: 0.7em; height: 0.7em; margin-right: 0.3em; border-radius: 2px;
}
.figures .sold dt::before { background: var(--sold); }
.figures .held dt::before { background: var(--held); }
.figures .available dt::before { background: var(--available); }
.figures .ok dd { color: var(--available); }
.figures .bad dd, .bad { color: var(--bad); }
.note { flex-basis: 100%; margin: 0; font-size: 0.8rem; color: var(--muted); font-weight: normal; }
.empty { color: var(--muted); margin: 0; }
svg .track { fill: var(--track); }
svg .sold { fill: var(--sold); }
svg .held { fill: var(--held); }
svg .available { fill: var(--available); opacity: 0.45; }
svg .bar { fill: var(--sold); }
svg .baseline { stroke: var(--line); stroke-width: 1; }
.stock-bar { display: block; width: 100%; height: 0.75rem; border-radius: 3px; }
td .stock-bar { height: 0.4rem; }
.chart { display: block; width: 100%; height: 4.5rem; }
.event .chart { height: 1.75rem; margin-top: 0.25rem; }
figure.sales { margin: 0; }
figure.sales .axis { display: flex; justify-content: space-between; font-size: 0.75rem; color: var(--muted); }
figcaption { font-size: 0.9rem; margin-top: 0.5rem; }
.search { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin-bottom: 1rem; }
.search input { font: inherit; padding: 0.35rem 0.5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--text); min-width: 12rem; }
.search button { font: inherit; padding: 0.35rem 0.9rem; border: 1px solid var(--line); border-radius: 6px; background: var(--sold); color: #fff; cursor: pointer; }
.event-list { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fill, minmax(min(100%, 24rem), 1fr)); }
.event { border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem; min-width: 0; }
table { width: 100%; border-collapse: collapse; font-size: 0.9rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-size: 0.8rem; color: var(--muted); padding: 0.5rem 0 0.25rem; }
th, td { text-align: left; padding: 0.3rem 0.4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 0.8rem; color: var(--muted); font-weight: 600; }
table.types td { text-align: right; }
table.types tbody tr:first-child th, table.types tbody tr:first-child td { border-bottom: 0; padding-bottom: 0.1rem; }
table.types tr.bar-row td { padding-top: 0; }
.spark-label { margin: 0.5rem 0 0; font-size: 0.75rem; color: var(--muted); }
tr.cancelled { color: var(--muted); text-decoration: line-through; }
.pages { display: flex; gap: 1rem; margin-top: 1rem; }
@media (max-width: 32rem) {
  header.top, main, footer { padding: 0 0.5rem; }
  .panel { padding: 0.75rem; }
  .event { padding: 0.5rem; }
  th, td { padding: 0.3rem 0.2rem; }
  .figures { gap: 0.5rem 1rem; }
  table.rows thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  table.rows, table.rows tbody, table.rows tr, table.rows td { display: block; }
  table.rows tr { border-bottom: 1px solid var(--line); padding: 0.4rem 0; }
  table.rows td { border: 0; padding: 0.1rem 0; }
  table.rows td::before { content: attr(data-label) ': '; color: var(--muted); font-size: 0.8rem; }
  .connection { margin-left: 0; flex-basis: 100%; }
}
`;

/** A small chart as the tab's icon (and no 404 for /favicon.ico). */
const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f6feb"/><rect x="3" y="8" width="2" height="5" fill="#fff"/><rect x="7" y="5" width="2" height="8" fill="#fff"/><rect x="11" y="3" width="2" height="10" fill="#fff"/></svg>
`;

/** The dashboard's files by name, with their media types. */
export const DASHBOARD_ASSETS: Readonly<Record<string, { body: string; type: string }>> = Object.freeze({
  'dashboard.js': { body: SCRIPT, type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { body: STYLESHEET, type: 'text/css; charset=utf-8' },
  'icon.svg': { body: ICON, type: 'image/svg+xml' },
});
