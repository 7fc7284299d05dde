// What every webdial page shares: the API key (asked once per browser
// session, kept in sessionStorage["webdial.key"]), calls to this
// gateway's API, refusals in words, and building elements whose text is
// always set with textContent (values from PBXs and branch names are
// never markup).
(function () {
  'use strict';
  var STORE = 'webdial.key';

  function storedKey() {
    try { return window.sessionStorage.getItem(STORE) || ''; } catch (e) { return ''; }
  }
  function saveKey(key) {
    try { window.sessionStorage.setItem(STORE, key); } catch (e) { /* private mode: kept for this page only */ }
    memory = key;
  }
  var memory = storedKey();
  function key() { return storedKey() || memory; }

  // An element with attributes and text (as text: never parsed as markup).
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // A fresh random id (Idempotency-Key): crypto.randomUUID, or random bytes.
  function randomId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) { window.crypto.getRandomValues(bytes); }
    else { for (var i = 0; i < 16; i++) { bytes[i] = Math.floor(Math.random() * 256); } }
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  // One API call: {status, body}; status 0 when the gateway was not reached.
  function api(method, path, body, extra) {
    var headers = { 'Accept': 'application/json' };
    var k = key();
    if (k) { headers['Authorization'] = 'Bearer ' + k; }
    Object.keys(extra || {}).forEach(function (h) { headers[h] = extra[h]; });
    var init = { method: method, headers: headers, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var parsed = null;
        try { parsed = JSON.parse(text); } catch (e) { parsed = { message: text }; }
        return { status: resp.status, body: parsed || {} };
      });
    }, function (err) {
      return { status: 0, body: { status: 'error', message: 'the gateway could not be reached (' + err + ')' } };
    });
  }

  // A refusal or failure in words: "The key was refused (401): …".
  function words(answer) {
    var b = answer.body || {};
    var said = b.message || b.status || '';
    switch (answer.status) {
      case 0: return 'The gateway could not be reached: ' + said;
      case 401: return 'The key was refused (401): ' + said;
      case 403: return 'Not allowed (403): ' + said;
      case 404: return 'Not found (404): ' + said;
      case 429: return 'Too many requests (429): ' + said;
      default:
        if (answer.status >= 500) { return 'The phone system did not do it (' + answer.status + ', ' + (b.status || '') + '): ' + said; }
        if (answer.status >= 400) { return 'The request was refused (' + answer.status + ', ' + (b.status || '') + '): ' + said; }
        return said;
    }
  }

  // Shows the key form (with `why` in #key-error); calls `then` once a key is saved.
  function askKey(why, then) {
    var form = document.getElementById('key-form');
    var input = document.getElementById('key');
    var error = document.getElementById('key-error');
    if (!form || !input) { return; }
    if (error) { error.textContent = why || ''; }
    form.hidden = false;
    input.value = '';
    input.focus();
    form.onsubmit = function (ev) {
      ev.preventDefault();
      var value = input.value.trim();
      if (!value) { return; }
      saveKey(value);
      form.hidden = true;
      if (then) { then(); }
    };
  }

  // Asks /v1/whoami with the stored key: the key form on a 401 (the words
  // in #key-error), `then(who)` when the key is good (or none is needed).
  function authenticate(then) {
    api('GET', '/v1/whoami').then(function (answer) {
      if (answer.status === 200) {
        var form = document.getElementById('key-form');
        if (form) { form.hidden = true; }
        then(answer.body);
      } else if (answer.status === 401) {
        askKey(key() ? words(answer) : 'This gateway needs an API key (401): ' + (answer.body.message || ''),
          function () { authenticate(then); });
      } else {
        askKey(words(answer), function () { authenticate(then); });
      }
    });
  }

  // The page's query parameter `name` ('' when absent).
  function param(name) {
    var v = new URLSearchParams(window.location.search).get(name);
    return v === null ? '' : v;
  }

  // An EventSource on `path` with the key in `?key=`, whose `type` events
  // go to `onEvent(data)`; reopened (after checking the key) when it closes.
  function stream(path, type, onEvent, onState) {
    var source = null;
    var closed = false;
    var retries = 0;
    function open() {
      var k = key();
      var url = path + (k ? (path.indexOf('?') < 0 ? '?' : '&') + 'key=' + encodeURIComponent(k) : '');
      source = new EventSource(url);
      source.addEventListener('open', function () { retries = 0; if (onState) { onState('open'); } });
      source.addEventListener(type, function (m) {
        var data = null;
        try { data = JSON.parse(m.data); } catch (e) { return; }
        onEvent(data, m.lastEventId);
      });
      source.addEventListener('error', function () {
        if (onState) { onState('error'); }
        if (source.readyState === EventSource.CLOSED && !closed) {
          retries = Math.min(retries + 1, 10);
          window.setTimeout(function () { authenticate(function () { open(); }); }, 1000 * retries);
        }
      });
    }
    open();
    return { close: function () { closed = true; if (source) { source.close(); } } };
  }

  window.WebdialPage = {
    api: api, askKey: askKey, authenticate: authenticate, el: el, key: key, param: param,
    randomId: randomId, stream: stream, words: words
  };
}());
