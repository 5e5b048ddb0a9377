// The analytics dashboard: asks for an API key once (kept in this tab's sessionStorage only),
// then reads the reader endpoints of the API and draws them with Chart.js. Every chart has a
// table beside it (its text alternative); colours are the Okabe–Ito palette of pages.css;
// nothing moves for people who prefer reduced motion. The page holds no data of its own:
// everything comes from the API with the key.
'use strict';

const API = '/api';
const KEY_SLOT = 'chorus.dashboard.apiKey';
const BAD_KEY = 'This API key is wrong or has been revoked: ask an operator for a valid key.';

// Core Web Vitals thresholds (web.dev): good up to the first, poor above the second.
const VITALS = {
  lcp: { name: 'Largest Contentful Paint', good: 2500, poor: 4000, unit: 'ms' },
  fid: { name: 'First Input Delay', good: 100, poor: 300, unit: 'ms' },
  cls: { name: 'Cumulative Layout Shift', good: 0.1, poor: 0.25, unit: '' },
  inp: { name: 'Interaction to Next Paint', good: 200, poor: 500, unit: 'ms' },
  ttfb: { name: 'Time to First Byte', good: 800, poor: 1800, unit: 'ms' },
};
const BANDS = { good: '#009e73', ni: '#e69f00', poor: '#d55e00' };

const $ = (id) => document.getElementById(id);
const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');
const darkScheme = matchMedia('(prefers-color-scheme: dark)');
const number = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
const charts = new Map();
let apiKey = null;
let me = null;
let liveAbort = null;

class BadKey extends Error {}

// -- talking to the API ----------------------------------------------------------------------
// nginx lets only a few reads of views run at once (for every client together) and answers
// the others 429 with Retry-After: such a read is tried again after the wait, a few times.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function request(path, options = {}) {
  const headers = { 'X-API-Key': apiKey, ...(options.headers ?? {}) };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(API + path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
    if (response.status === 401) throw new BadKey(BAD_KEY);
    if (response.status !== 429 || (options.method ?? 'GET') !== 'GET' || attempt === 4) return response;
    const wait = Number(response.headers.get('Retry-After'));
    await sleep(Math.min(Number.isFinite(wait) && wait > 0 ? wait : 1, 5) * 1000);
  }
}

// Runs the loaders two at a time, in order, and returns their results in that order.
async function twoAtATime(loaders) {
  const results = new Array(loaders.length);
  let next = 0;
  const worker = async () => {
    while (next < loaders.length) {
      const index = next++;
      results[index] = await loaders[index]();
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

async function getJson(path) {
  const response = await request(path);
  if (!response.ok) {
    const error = await response.json().catch(() => ({}));
    throw new Error(error.message || `GET ${path} answered HTTP ${response.status}.`);
  }
  return response.json();
}

// -- drawing -----------------------------------------------------------------------------------
function palette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { fg: v('--fg'), muted: v('--muted'), border: v('--border'), grid: v('--grid'), series: ['--c1', '--c2', '--c3', '--c4', '--c5', '--c6'].map(v) };
}

function chart(canvas, config) {
  charts.get(canvas.id)?.destroy();
  const colours = palette();
  Chart.defaults.color = colours.fg;
  Chart.defaults.borderColor = colours.grid;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  config.options = {
    responsive: true,
    maintainAspectRatio: false,
    animation: reducedMotion.matches ? false : { duration: 300 },
    ...config.options,
  };
  const made = new Chart(canvas, config);
  charts.set(canvas.id, made);
  canvas.closest('.chart').dataset.state = 'rendered';
  return made;
}

function table(container, caption, columns, rows) {
  const t = document.createElement('table');
  const cap = t.createCaption();
  cap.textContent = caption;
  const head = t.createTHead().insertRow();
  for (const column of columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = column.label;
    if (column.numeric) th.className = 'num';
    head.append(th);
  }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const column of columns) {
      const td = tr.insertCell();
      const value = column.value(row);
      td.textContent = value === null || value === undefined ? '—' : typeof value === 'number' ? number.format(value) : String(value);
      if (column.numeric) td.className = 'num';
    }
  }
  container.replaceChildren(t);
}

function rating(metric, value) {
  if (value === null || value === undefined) return 'no samples';
  const t = VITALS[metric];
  return value <= t.good ? 'good' : value <= t.poor ? 'needs improvement' : 'poor';
}

function withUnit(metric, value) {
  if (value === null || value === undefined) return 'no samples';
  const unit = VITALS[metric].unit;
  return number.format(value) + (unit ? ` ${unit}` : '');
}

function drawVitals(rows) {
  const holder = $('vitals-charts');
  holder.replaceChildren();
  const colours = palette();
  for (const row of rows) {
    const t = VITALS[row.metric];
    if (!t) continue;
    const box = document.createElement('div');
    box.className = 'vital';
    const title = document.createElement('h3');
    const summary = `${row.metric.toUpperCase()} (${t.name}): p75 ${withUnit(row.metric, row.p75)}, ${rating(row.metric, row.p75)}`;
    title.textContent = summary;
    const area = document.createElement('div');
    area.className = 'chart';
    const canvas = document.createElement('canvas');
    canvas.id = `vital-${row.metric}`;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `${summary}; good up to ${withUnit(row.metric, t.good)}, poor above ${withUnit(row.metric, t.poor)}`);
    area.append(canvas);
    box.append(title, area);
    holder.append(box);
    const max = Math.max(t.poor * 1.5, (row.p75 ?? 0) * 1.1);
    const band = (from, to, colour, label) => ({
      type: 'box', xMin: from, xMax: to, backgroundColor: colour + '55', borderWidth: 0, drawTime: 'beforeDatasetsDraw',
      label: { display: true, content: label, position: { x: 'center', y: 'start' }, color: colours.fg, font: { size: 11 } },
    });
    chart(canvas, {
      type: 'bar',
      data: { labels: ['p75'], datasets: [{ label: 'p75', data: [row.p75 ?? 0], backgroundColor: colours.fg, barThickness: 12 }] },
      options: {
        indexAxis: 'y',
        scales: { x: { min: 0, max, title: { display: Boolean(t.unit), text: t.unit } }, y: { display: false } },
        plugins: {
          legend: { display: false },
          annotation: {
            annotations: {
              good: band(0, t.good, BANDS.good, 'good'),
              ni: band(t.good, t.poor, BANDS.ni, 'needs impr.'),
              poor: band(t.poor, max, BANDS.poor, 'poor'),
            },
          },
        },
      },
    });
  }
  table($('vitals-table'), 'Core Web Vitals of the last 7 days', [
    { label: 'Metric', value: (r) => r.metric.toUpperCase() },
    { label: 'Samples', value: (r) => r.sampleCount, numeric: true },
    { label: 'p75', value: (r) => r.p75, numeric: true },
    { label: 'Mean', value: (r) => r.mean, numeric: true },
    { label: 'Good up to', value: (r) => VITALS[r.metric]?.good, numeric: true },
    { label: 'Poor above', value: (r) => VITALS[r.metric]?.poor, numeric: true },
    { label: 'Rating of the p75', value: (r) => rating(r.metric, r.p75) },
  ], rows);
}

function drawThemes(rows) {
  const colours = palette();
  chart($('themes-chart'), {
    type: 'bar',
    data: {
      labels: rows.map((r) => r.accessibilityTheme),
      datasets: [{ label: 'Sessions', data: rows.map((r) => r.sessions), backgroundColor: colours.series.slice(0, rows.length) }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  table($('themes-table'), 'Sessions per accessibility theme, last 30 days', [
    { label: 'Theme', value: (r) => r.accessibilityTheme },
    { label: 'Sessions', value: (r) => r.sessions, numeric: true },
    { label: 'Mean session (s)', value: (r) => (r.meanSessionDuration === null ? null : r.meanSessionDuration / 1000), numeric: true },
  ], rows);
}

function drawDesign([row]) {
  const figures = [
    ['Sessions', row?.sessions],
    ['Mean deepest scroll', row?.meanScrollDepthPercentage === null || row?.meanScrollDepthPercentage === undefined ? null : `${number.format(row.meanScrollDepthPercentage)} %`],
    ['Mean CTA clicks per session', row?.meanCtaClicksPerSession],
  ];
  const list = $('design');
  list.replaceChildren();
  for (const [label, value] of figures) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = value === null || value === undefined ? '—' : typeof value === 'number' ? number.format(value) : value;
    div.append(dt, dd);
    list.append(div);
  }
}

function drawLeads(days, sources) {
  const colours = palette();
  chart($('leads-chart'), {
    type: 'bar',
    data: { labels: days.map((r) => r.day.slice(5)), datasets: [{ label: 'Leads', data: days.map((r) => r.leads), backgroundColor: colours.series[0] }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  table($('leads-table'), 'New leads per UTC day, last 30 days', [
    { label: 'Day', value: (r) => r.day },
    { label: 'Leads', value: (r) => r.leads, numeric: true },
  ], days);
  chart($('sources-chart'), {
    type: 'bar',
    data: { labels: sources.map((r) => r.leadSource), datasets: [{ label: 'Leads', data: sources.map((r) => r.leads), backgroundColor: colours.series[2] }] },
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  table($('sources-table'), 'New leads per source, last 30 days', [
    { label: 'Source', value: (r) => r.leadSource },
    { label: 'Leads', value: (r) => r.leads, numeric: true },
  ], sources);
}

function drawViews(days) {
  const colours = palette();
  chart($('views-chart'), {
    type: 'line',
    data: {
      labels: days.map((r) => r.day.slice(5)),
      datasets: [
        // Told apart by line style and point shape too, not by colour alone.
        { label: 'Page views', data: days.map((r) => r.pageViews), borderColor: colours.series[0], backgroundColor: colours.series[0], pointStyle: 'circle' },
        { label: 'Sessions', data: days.map((r) => r.sessions), borderColor: colours.series[1], backgroundColor: colours.series[1], borderDash: [6, 4], pointStyle: 'rect' },
      ],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { labels: { usePointStyle: true } } } },
  });
  table($('views-table'), 'Page views and sessions per UTC day, last 30 days', [
    { label: 'Day', value: (r) => r.day },
    { label: 'Page views', value: (r) => r.pageViews, numeric: true },
    { label: 'Sessions', value: (r) => r.sessions, numeric: true },
  ], days);
}

function drawRecent(leads) {
  table($('recent-table'), 'The 10 newest leads', [
    { label: 'Received (UTC)', value: (r) => r.createdAt.slice(0, 16).replace('T', ' ') },
    { label: 'Name', value: (r) => `${r.firstName} ${r.lastName}` },
    { label: 'Company', value: (r) => r.companyName },
    { label: 'Source', value: (r) => r.leadSource },
    { label: 'Theme', value: (r) => r.accessibilityTheme },
  ], leads);
  const slot = $('note-slot');
  slot.replaceChildren();
  // Only an admin key may add CRM entries (the API answers 403 to a reader): a reader key is
  // never shown the control, it is not merely disabled.
  if (me.role !== 'admin' || !leads.length) return;
  const form = document.createElement('form');
  form.className = 'note-form';
  form.id = 'note-form';
  form.innerHTML = `
    <div><label for="note-lead">Lead</label><select id="note-lead" required></select></div>
    <div><label for="note-kind">Kind</label><select id="note-kind">
      <option>note</option><option>call</option><option>email</option><option>meeting</option><option>status_change</option>
    </select></div>
    <div><label for="note-text">Note</label><input id="note-text" maxlength="5000" required></div>
    <button type="submit">Add to the CRM history</button>
    <p id="note-result" role="status"></p>`;
  const select = form.querySelector('#note-lead');
  for (const lead of leads) select.add(new Option(`${lead.firstName} ${lead.lastName}`, lead.id));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = form.querySelector('#note-result');
    try {
      const response = await request('/lead-interactions', {
        method: 'POST',
        body: { leadId: select.value, kind: form.querySelector('#note-kind').value, note: form.querySelector('#note-text').value },
      });
      const answer = await response.json().catch(() => ({}));
      result.textContent = response.ok ? 'Recorded.' : answer.message || `The API answered HTTP ${response.status}.`;
    } catch (error) {
      handleFailure(error);
    }
  });
  slot.append(form);
}

// -- the brand-intelligence sections: shown once their endpoint answers, hidden otherwise ----
function section(name, visible) {
  document.querySelector(`[data-section="${name}"]`).hidden = !visible;
}

async function loadAbTests() {
  const response = await request('/brand-analytics/ab-tests');
  const rows = response.ok ? await response.json().catch(() => null) : null;
  if (!Array.isArray(rows)) return section('ab', false);
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  table($('ab-table'), 'A/B tests: exposures, conversions and p-values per variant', keys.map((key) => ({
    label: key,
    value: (r) => (r[key] !== null && typeof r[key] === 'object' ? JSON.stringify(r[key]) : r[key]),
    numeric: rows.every((r) => typeof r[key] === 'number' || r[key] === null),
  })), rows);
  section('ab', true);
}

async function loadHeatmap() {
  const response = await request('/brand-analytics/logo-heatmap.svg?days=30');
  if (!response.ok || !(response.headers.get('Content-Type') ?? '').startsWith('image/svg+xml')) return section('heatmap', false);
  const image = $('heatmap');
  if (image.src.startsWith('blob:')) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await response.blob());
  section('heatmap', true);
}

// EventSource cannot send the X-API-Key header, so the stream is read with fetch and parsed
// as Server-Sent Events: blocks separated by a blank line, "data:" lines joined.
async function startLive() {
  liveAbort?.abort();
  liveAbort = new AbortController();
  let response;
  try {
    response = await request('/live/brand-metrics', { headers: { Accept: 'text/event-stream' }, signal: liveAbort.signal });
  } catch (error) {
    if (error instanceof BadKey) throw error;
    return section('live', false);
  }
  if (!response.ok || !(response.headers.get('Content-Type') ?? '').startsWith('text/event-stream')) return section('live', false);
  section('live', true);
  const rows = [];
  const show = () => table($('live-table'), 'The latest 20 events of the stream', [
    { label: 'Received', value: (r) => r.at },
    { label: 'Event', value: (r) => r.event },
    { label: 'Data', value: (r) => r.data },
  ], rows);
  show();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        let event = 'message';
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (!data.length) continue;
        rows.unshift({ at: new Date().toLocaleTimeString(), event, data: data.join('\n') });
        rows.length = Math.min(rows.length, 20);
        show();
      }
    }
  } catch {
    // aborted (paused, refreshed, signed out) or the connection dropped
  }
}

// -- the whole board -----------------------------------------------------------------------
function handleFailure(error) {
  if (error instanceof BadKey) {
    signOut(error.message);
    return;
  }
  const box = $('board-error');
  box.textContent = error.message;
  box.hidden = false;
}

async function load() {
  $('board-error').hidden = true;
  try {
    const [vitals, themes, design, leadDays, sources, viewDays, recent] = await twoAtATime([
      '/brand-analytics/performance',
      '/brand-analytics/accessibility-usage',
      '/brand-analytics/design-effectiveness',
      '/brand-analytics/leads-per-day',
      '/brand-analytics/leads-per-source',
      '/brand-analytics/page-views-per-day',
      '/leads?select=id,firstName,lastName,companyName,leadSource,accessibilityTheme,createdAt&order=createdAt.desc&limit=10',
    ].map((path) => () => getJson(path)));
    drawVitals(vitals);
    drawThemes(themes);
    drawDesign(design);
    drawLeads(leadDays, sources);
    drawViews(viewDays);
    drawRecent(recent);
    await twoAtATime([loadAbTests, loadHeatmap]);
    document.body.dataset.loaded = 'true';
    if ($('live-toggle').getAttribute('aria-pressed') === 'true') startLive().catch(handleFailure);
  } catch (error) {
    handleFailure(error);
  }
}

function showSignIn(message) {
  $('board').hidden = true;
  $('sign-in').hidden = false;
  const box = $('key-error');
  box.textContent = message ?? '';
  box.hidden = !message;
  $('api-key').value = '';
  $('api-key').focus();
}

function signOut(message) {
  liveAbort?.abort();
  sessionStorage.removeItem(KEY_SLOT);
  apiKey = null;
  me = null;
  for (const made of charts.values()) made.destroy();
  charts.clear();
  $('note-slot').replaceChildren();
  delete document.body.dataset.loaded;
  showSignIn(message);
}

async function signIn(key) {
  apiKey = key;
  let response;
  try {
    response = await request('/api-key');
  } catch (error) {
    return signOut(error instanceof BadKey ? error.message : 'The API could not be reached: check that the stack runs (invoke up) and try again.');
  }
  if (!response.ok) return signOut(`The API answered HTTP ${response.status} to the key check: try again later.`);
  me = await response.json();
  sessionStorage.setItem(KEY_SLOT, key);
  $('sign-in').hidden = true;
  $('board').hidden = false;
  $('who').textContent = `Signed in with the ${me.role} key “${me.name}” (${me.keyPrefix}…).`;
  await load();
}

document.addEventListener('DOMContentLoaded', () => {
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('api-key').value.trim();
    if (key) signIn(key);
  });
  $('sign-out').addEventListener('click', () => signOut());
  $('refresh').addEventListener('click', () => load());
  $('live-toggle').addEventListener('click', (event) => {
    const on = event.currentTarget.getAttribute('aria-pressed') !== 'true';
    event.currentTarget.setAttribute('aria-pressed', String(on));
    if (on) startLive().catch(handleFailure);
    else liveAbort?.abort();
  });
  // Redraw in the new colours when the system switches between light and dark.
  darkScheme.addEventListener('change', () => { if (me) load(); });
  const stored = sessionStorage.getItem(KEY_SLOT);
  if (stored) signIn(stored);
  else showSignIn();
});
