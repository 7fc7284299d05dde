/*! webdial.js — one-click dialling for intranet pages.
 *
 *   <script src="https://GATEWAY/webdial.js" data-branch="B" data-ext="E" [data-key="K"]></script>
 *
 * Every a[href^="tel:"] and [data-webdial-number] element on the page (also
 * ones added later: one click listener on the document) dials through the
 * gateway the script came from, and only that gateway: one POST /v1/dial
 * per click, with an Idempotency-Key, the element marked aria-busy while
 * it is in flight, the result in <span class="webdial-result"
 * data-status="STATUS"> right after it. Without data-key, a key is asked
 * once (a small form after the element) and kept in sessionStorage. The
 * gateway must list this page's origin under cors.origins.
 * Defines nothing but window.webdial; uses no eval.
 */
(function () {
  'use strict';
  if (window.webdial && window.webdial.origin) { return; }  // included twice: the first one works
  var script = document.currentScript ||
    document.querySelector('script[src$="/webdial.js"], script[src*="/webdial.js?"]');
  if (!script || !script.src) { return; }
  var origin;
  try { origin = new URL(script.src, document.baseURI).origin; } catch (e) { return; }
  var branch = script.getAttribute('data-branch') || '';
  var extension = script.getAttribute('data-ext') || '';
  var givenKey = script.getAttribute('data-key') || '';
  var STORE = 'webdial.key';
  var SELECTOR = 'a[href^="tel:"], a[href^="TEL:"], [data-webdial-number]';
  var results = new WeakMap();
  var memoryKey = '';

  function key() {
    if (givenKey) { return givenKey; }
    try { return window.sessionStorage.getItem(STORE) || memoryKey; } catch (e) { return memoryKey; }
  }
  function saveKey(k) {
    memoryKey = k;
    try { window.sessionStorage.setItem(STORE, k); } catch (e) { /* kept for this page only */ }
  }

  function randomId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  // The number an element dials: data-webdial-number, or the tel: URI's.
  function numberOf(el) {
    var n = el.getAttribute('data-webdial-number');
    if (n === null) {
      n = (el.getAttribute('href') || '').replace(/^tel:(\/\/)?/i, '');
      try { n = decodeURIComponent(n); } catch (e) { /* as written */ }
      n = n.split(';')[0];
    }
    return n.trim();
  }

  // The result next to `el`, replacing the previous one.
  function show(el, status, words) {
    var old = results.get(el);
    if (old && old.parentNode) { old.parentNode.removeChild(old); }
    var span = document.createElement('span');
    span.className = 'webdial-result';
    span.setAttribute('data-status', status);
    span.setAttribute('role', 'status');
    span.textContent = words;
    el.insertAdjacentElement('afterend', span);
    results.set(el, span);
    return span;
  }

  function busy(el, on) {
    if (on) { el.setAttribute('aria-busy', 'true'); el.setAttribute('aria-disabled', 'true'); }
    else { el.removeAttribute('aria-busy'); el.removeAttribute('aria-disabled'); }
    if ('disabled' in el && el.tagName !== 'A') { el.disabled = on; }
  }

  function words(status, body, number) {
    var said = (body && body.message) || '';
    switch (body && body.status) {
      case 'accepted': return 'Calling ' + number + ': your phone rings first.';
      case 'dry_run': return 'Dry run: nothing was sent.';
      case 'open_uri': return 'Opening your phone app…';
      default:
        if (status === 401) { return 'The key was refused (401): ' + said; }
        if (status === 403) { return 'Not allowed (403): ' + said; }
        if (status === 429) { return 'Too many calls (429): ' + said; }
        return 'The call was not made (' + status + ', ' + ((body && body.status) || 'error') + '): ' + said;
    }
  }

  // The inline key form after `el`; `then()` once a key is saved.
  function askKey(el, why, then) {
    var span = show(el, 'unauthorized', why + ' ');
    var form = document.createElement('form');
    form.className = 'webdial-key-form';
    var input = document.createElement('input');
    input.type = 'password';
    input.className = 'webdial-key';
    input.setAttribute('autocomplete', 'current-password');
    input.setAttribute('aria-label', 'webdial API key');
    input.placeholder = 'API key';
    var button = document.createElement('button');
    button.type = 'submit';
    button.className = 'webdial-key-save';
    button.textContent = 'Use key';
    form.appendChild(input);
    form.appendChild(button);
    span.appendChild(form);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var k = input.value.trim();
      if (!k) { return; }
      saveKey(k);
      then();
    });
    input.focus();
  }

  function dial(number, el) {
    var target = el || document.body;
    var headers = { 'Content-Type': 'application/json', 'Accept': 'application/json', 'Idempotency-Key': randomId() };
    var k = key();
    if (k) { headers['Authorization'] = 'Bearer ' + k; }
    busy(target, true);
    return fetch(origin + '/v1/dial', {
      method: 'POST', mode: 'cors', credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      headers: headers, body: JSON.stringify({ branch: branch, extension: extension, number: number })
    }).then(function (resp) {
      return resp.json().then(function (body) { return { status: resp.status, body: body }; },
        function () { return { status: resp.status, body: { status: 'error', message: 'an answer that is not JSON' } }; });
    }).then(function (answer) {
      busy(target, false);
      var b = answer.body || {};
      if (answer.status === 401 && !givenKey) {
        askKey(target, words(401, b, number), function () { dial(number, el); });
        return answer;
      }
      show(target, b.status || 'error', words(answer.status, b, number));
      if (b.status === 'open_uri' && b.uri) { window.location.href = b.uri; }
      return answer;
    }, function (err) {
      busy(target, false);
      show(target, 'error', 'The gateway could not be reached (' + (err && err.message ? err.message : err) + ').');
      return { status: 0, body: { status: 'error' } };
    });
  }

  document.addEventListener('click', function (ev) {
    var el = ev.target && ev.target.closest ? ev.target.closest(SELECTOR) : null;
    if (!el || ev.defaultPrevented || ev.button > 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) { return; }
    ev.preventDefault();
    if (el.getAttribute('aria-busy') === 'true') { return; }  // one dial per click, not two
    var number = numberOf(el);
    if (!number) { show(el, 'invalid_request', 'There is no number to call here.'); return; }
    dial(number, el);
  }, true);

  window.webdial = { origin: origin, branch: branch, extension: extension, dial: dial };
}());
