// The reference contact form of the CHORUS lead-capture API: everything a website sends, and
// when. Copy what you need. The API is same-origin (nginx serves this page and /api), so no
// CORS and no key: every endpoint used here is public. The server is the one source of the
// validation rules; this script only shows what it answers.
//
//   GET  /api/consent-text              the consent text's version, shown next to the boxes
//   POST /api/page-views                once per page load
//   POST /api/accessibility-preferences on load and whenever the theme or dark mode changes
//   POST /api/brand-engagement          Core Web Vitals and engagement, on submit and on leave
//   POST /api/leads                     the form itself: 201, 400 with errors[], or 429
import { onCLS, onINP, onLCP, onTTFB } from '/vendor/web-vitals.js';

const API = '/api';
const THEMES = ['default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia'];

// -- The session: one opaque id per browser tab, kept in sessionStorage (gone with the tab).
// Sending it with the lead links the lead to this session's preferences and engagement.
function sessionValue(key, make) {
  let value = sessionStorage.getItem(key);
  if (value === null) {
    value = make();
    sessionStorage.setItem(key, value);
  }
  return value;
}
const sessionId = sessionValue('chorus.sessionId', () => 'sess_' + crypto.randomUUID().replaceAll('-', ''));
const sessionStart = Number(sessionValue('chorus.sessionStart', () => String(Date.now())));
const pagesViewed = JSON.parse(sessionValue('chorus.pagesViewed', () => '[]'));
if (pagesViewed.at(-1) !== location.pathname && pagesViewed.length < 100) {
  pagesViewed.push(location.pathname.slice(0, 200));
  sessionStorage.setItem('chorus.pagesViewed', JSON.stringify(pagesViewed));
}

// The contract's three device types, by viewport width.
function deviceType() {
  if (matchMedia('(max-width: 767px)').matches) return 'mobile';
  if (matchMedia('(max-width: 1023px)').matches) return 'tablet';
  return 'desktop';
}

function postJson(path, body, keepalive = false) {
  // keepalive lets a post sent while the page unloads still arrive.
  return fetch(API + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    keepalive,
  });
}

// -- Core Web Vitals, measured by Google's web-vitals library. reportAllChanges: the latest
// value is at hand whenever we post (on submit, or when the tab is hidden). FID is gone from
// web-vitals 5 (INP replaced it), so fid is never sent.
const vitals = {};
const keep = (metric) => {
  vitals[metric.name.toLowerCase()] = metric.name === 'CLS' ? Number(metric.value.toFixed(4)) : Math.round(metric.value);
};
onLCP(keep, { reportAllChanges: true });
onCLS(keep, { reportAllChanges: true });
onINP(keep, { reportAllChanges: true });
onTTFB(keep);

// -- Engagement: the deepest scroll, calls to action, keyboard use, logo interactions.
const engagement = { scroll: 0, ctaClicks: [], keyboard: false, logo: [], themeSwitches: 0 };
function trackScroll() {
  const room = document.documentElement.scrollHeight - innerHeight;
  const depth = room <= 0 ? 100 : Math.round((scrollY / room) * 100);
  engagement.scroll = Math.max(engagement.scroll, Math.min(100, Math.max(0, depth)));
}
addEventListener('scroll', trackScroll, { passive: true });
addEventListener('keydown', (event) => { if (event.key === 'Tab') engagement.keyboard = true; });

function sendEngagement(keepalive = false) {
  trackScroll();
  const features = [];
  if (document.documentElement.dataset.theme !== 'default') features.push('colour-theme');
  if (matchMedia('(prefers-reduced-motion: reduce)').matches) features.push('reduced-motion');
  return postJson('/brand-engagement', {
    sessionId,
    coreWebVitals: { ...vitals },
    scrollDepthPercentage: engagement.scroll,
    ctaClicks: engagement.ctaClicks,
    keyboardNavigationUsed: engagement.keyboard,
    accessibilityFeaturesUsed: features,
    logoInteractions: engagement.logo.slice(-500),
    logoAccessibilityThemeChanges: engagement.themeSwitches,
  }, keepalive).catch(() => {}); // analytics never disturb the visitor
}
addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') sendEngagement(true); });

// -- The accessibility theme switch: applied at once, remembered for the tab, and posted.
const root = document.documentElement;
const themeSelect = document.getElementById('theme');
const darkBox = document.getElementById('dark');

function savePreferences() {
  return postJson('/accessibility-preferences', {
    sessionId,
    accessibilityTheme: root.dataset.theme,
    darkModePreference: root.dataset.scheme === 'dark',
    reducedMotion: matchMedia('(prefers-reduced-motion: reduce)').matches,
    highContrast: matchMedia('(prefers-contrast: more)').matches,
    themeSwitchCount: engagement.themeSwitches,
    logoInteractionCount: engagement.logo.length,
    sessionDuration: Date.now() - sessionStart,
  }).catch(() => {});
}
function applyTheme(theme, dark) {
  root.dataset.theme = THEMES.includes(theme) ? theme : 'default';
  root.dataset.scheme = dark ? 'dark' : 'light';
  themeSelect.value = root.dataset.theme;
  darkBox.checked = dark;
  sessionStorage.setItem('chorus.theme', root.dataset.theme);
  sessionStorage.setItem('chorus.dark', String(dark));
}
applyTheme(
  sessionStorage.getItem('chorus.theme') ?? 'default',
  (sessionStorage.getItem('chorus.dark') ?? String(matchMedia('(prefers-color-scheme: dark)').matches)) === 'true',
);
for (const control of [themeSelect, darkBox]) {
  control.addEventListener('change', () => {
    engagement.themeSwitches += 1;
    applyTheme(themeSelect.value, darkBox.checked);
    savePreferences();
  });
}

const logoButton = document.getElementById('logo');
logoButton.addEventListener('click', () => {
  engagement.logo.push({ timestamp: Date.now(), theme: root.dataset.theme, duration: 0 });
});

// -- On load: the page view, the preferences, and the consent text's version.
postJson('/page-views', {
  sessionId,
  path: location.pathname,
  ...(document.referrer ? { referrer: document.referrer } : {}),
  deviceType: deviceType(),
}).catch(() => {});
savePreferences();

const consentVersion = document.getElementById('consent-version');
fetch(API + '/consent-text')
  .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
  .then((text) => { consentVersion.textContent = text.version; })
  .catch(() => { consentVersion.textContent = 'unavailable'; });

// -- The form. novalidate: the server's rules decide, and its answer is shown field by field.
const form = document.getElementById('contact');
const summary = document.getElementById('summary');
const success = document.getElementById('success');
const submitButton = document.getElementById('submit');
// Where a field's error goes: a field with no control of its own (coreWebVitals, browserInfo)
// is named in the summary only.
const errorSlot = (field) => document.getElementById(`${field}-error`);

function clearErrors() {
  summary.hidden = true;
  summary.replaceChildren();
  for (const slot of form.querySelectorAll('.field-error')) {
    slot.hidden = true;
    slot.textContent = '';
  }
  for (const control of form.querySelectorAll('[aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    control.setAttribute('aria-describedby', (control.getAttribute('aria-describedby') ?? '').replace(/\s*\S+-error/, '').trim());
  }
}

function showFieldError(field, message) {
  const slot = errorSlot(field);
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  const control = document.getElementById(field) ?? form.elements[field];
  const target = control instanceof RadioNodeList ? control[0] : control;
  if (target) {
    target.setAttribute('aria-invalid', 'true');
    target.setAttribute('aria-describedby', `${target.getAttribute('aria-describedby') ?? ''} ${field}-error`.trim());
  }
  return true;
}

function showSummary(sentence, items = []) {
  const p = document.createElement('p');
  p.textContent = sentence;
  summary.replaceChildren(p);
  if (items.length) {
    const list = document.createElement('ul');
    for (const { field, message } of items) {
      const li = document.createElement('li');
      if (errorSlot(field)) {
        const a = document.createElement('a');
        a.href = `#${field}`;
        a.textContent = message;
        li.append(a);
      } else {
        li.textContent = message;
      }
      list.append(li);
    }
    summary.append(list);
  }
  summary.hidden = false;
  summary.focus();
}

// "in 7 minutes", "in 45 seconds": Retry-After is in seconds.
function waitText(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return 'a moment';
  if (seconds < 90) return `${Math.ceil(seconds)} second${Math.ceil(seconds) === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

// The request body: every field of the contract. Empty optional text is left out (an empty
// phone would be an invalid phone), booleans are always sent.
function leadBody() {
  const data = new FormData(form);
  const text = (name) => (data.get(name) ?? '').toString().trim();
  const body = {
    firstName: text('firstName'),
    lastName: text('lastName'),
    email: text('email'),
    leadSource: 'contact_form',
    gdprConsent: data.get('gdprConsent') === 'on',
    marketingConsent: data.get('marketingConsent') === 'on',
    preferredCommunication: text('preferredCommunication') || 'email',
    accessibilityTheme: root.dataset.theme,
    deviceType: deviceType(),
    coreWebVitals: { ...vitals },
    logoInteractions: engagement.logo.length,
    timeOnSite: Date.now() - sessionStart,
    pagesViewed,
    browserInfo: { language: navigator.language, viewport: `${innerWidth}x${innerHeight}`, colorDepth: screen.colorDepth },
    sessionId,
  };
  for (const name of ['phone', 'companyName', 'inquiryDetails']) {
    if (text(name)) body[name] = text(name);
  }
  return body;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  submitButton.disabled = true;
  engagement.ctaClicks.push('contact-submit');
  try {
    sendEngagement();
    let response;
    try {
      response = await postJson('/leads', leadBody());
    } catch {
      showSummary('The form could not reach our server: check your connection and send it again.');
      return;
    }
    if (response.status === 201) {
      form.hidden = true;
      success.hidden = false;
      success.focus();
      return;
    }
    if (response.status === 429) {
      // The limit is per network and per email; Retry-After says when a slot frees up.
      const wait = Number(response.headers.get('Retry-After'));
      showSummary(`Too many messages were sent from here: please try again in ${waitText(wait)}.`);
      return;
    }
    const error = await response.json().catch(() => ({}));
    const problems = Array.isArray(error.errors) ? error.errors : [];
    if (response.status === 400 && problems.length) {
      // errors[]: {field, message} for every bad field; each message is one sentence.
      problems.forEach(({ field, message }) => showFieldError(field, message));
      showSummary(
        problems.length === 1 ? 'Please correct the field below.' : `Please correct the ${problems.length} fields below.`,
        problems,
      );
      return;
    }
    showSummary(error.message || `The server could not take the form (HTTP ${response.status}): please try again later.`);
  } finally {
    submitButton.disabled = false;
  }
});
