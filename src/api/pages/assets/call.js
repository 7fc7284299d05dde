// The click-to-call page: /call?branch=B&ext=E&number=N. One button; one
// POST /v1/dial with an Idempotency-Key made once per page load (a double
// click, or a second tab of the same load, rings once); then the call's
// progress from the events whose dial_id is the answer's id:
// requested → ringing → answered → ended (or failed, in words).
(function () {
  'use strict';
  var P = window.WebdialPage;
  var branch = P.param('branch');
  var ext = P.param('ext') || P.param('extension');
  var number = P.param('number').replace(/^\s*tel:(\/\/)?/i, '');
  try { number = decodeURIComponent(number); } catch (e) { /* already plain */ }
  // An unencoded + in the page's query reads as a space: restore it, as /v1/dial does.
  number = number.split(';')[0].replace(/^ (?=\d)/, '+').trim();
  var idempotencyKey = P.randomId();

  var button = document.getElementById('dial');
  var state = document.getElementById('state');
  var message = document.getElementById('message');
  var telHandler = document.getElementById('tel-handler');
  document.getElementById('number').textContent = number;
  document.getElementById('extension').textContent = ext;
  document.getElementById('branch').textContent = branch;

  // Forward only: a late "ringing" never undoes "answered".
  var RANK = { idle: 0, requested: 1, ringing: 2, answered: 3, ended: 4, failed: 4 };
  var LABEL = { requested: 'Requested…', ringing: 'Ringing', answered: 'Answered', ended: 'Ended', failed: 'Failed' };
  var EVENT_STATE = {
    dialling: 'ringing', ringing: 'ringing', answered: 'answered', ended: 'ended', voicemail: 'ended',
    missed: 'failed', rejected: 'failed', failed: 'failed'
  };
  var EVENT_WORDS = {
    voicemail: 'The call went to voicemail.', missed: 'Nobody answered.',
    rejected: 'The call was refused.', failed: 'The phone system could not make the call.'
  };
  var dialId = null;
  var early = [];  // events seen before the answer told us our id (bounded)

  function setState(next, words) {
    var now = state.getAttribute('data-state') || 'idle';
    if (RANK[next] === undefined || RANK[next] <= RANK[now]) { return; }
    state.setAttribute('data-state', next);
    state.textContent = LABEL[next] || next;
    if (words) { message.textContent = words; }
  }

  function apply(e) {
    var next = EVENT_STATE[e.type];
    if (!next) { return; }
    var words = EVENT_WORDS[e.type] || '';
    if (e.type === 'failed' && e.pbx && (e.pbx.error || e.pbx.reason)) { words += ' ' + (e.pbx.error || e.pbx.reason); }
    setState(next, words);
  }

  function onEvent(e) {
    if (dialId === null) {
      early.push(e);
      if (early.length > 100) { early.shift(); }
    } else if (e.dial_id === dialId) {
      apply(e);
    }
  }

  // The call record, in case events came before the stream was open.
  function catchUp() {
    P.api('GET', '/v1/calls/' + encodeURIComponent(dialId)).then(function (answer) {
      if (answer.status !== 200) { return; }
      (answer.body.events || []).forEach(apply);
      var s = answer.body.state;
      if (s === 'missed' || s === 'rejected') { setState('failed', EVENT_WORDS[s]); }
      else if (s && RANK[s] !== undefined) { setState(s); }
    });
  }

  function dial() {
    if (button.disabled) { return; }
    button.disabled = true;
    message.textContent = '';
    setState('requested');
    var body = { branch: branch, extension: ext, number: number };
    P.api('POST', '/v1/dial', body, { 'Idempotency-Key': idempotencyKey }).then(function (answer) {
      var b = answer.body || {};
      if (answer.status === 401) {
        // Nothing was sent: ask for a key, then the same click may go again.
        state.setAttribute('data-state', 'idle');
        state.textContent = 'Ready';
        message.textContent = P.words(answer);
        P.askKey(P.words(answer), function () { button.disabled = false; message.textContent = ''; });
        return;
      }
      if (!b.ok) { setState('failed', P.words(answer)); return; }
      if (b.status === 'open_uri' && b.uri) {
        message.textContent = 'Opening your phone app…';
        window.location.href = b.uri;
        return;
      }
      if (b.duplicate) { message.textContent = 'Already requested: this is the same call.'; }
      dialId = b.id;
      early.filter(function (e) { return e.dial_id === dialId; }).forEach(apply);
      early = [];
      catchUp();
    });
  }

  function offerTelHandler() {
    if (!navigator.registerProtocolHandler || !branch || !ext) { telHandler.hidden = true; return; }
    telHandler.hidden = false;
    telHandler.addEventListener('click', function () {
      var url = window.location.origin + '/call?branch=' + encodeURIComponent(branch) +
        '&ext=' + encodeURIComponent(ext) + '&number=%s';
      try {
        navigator.registerProtocolHandler('tel', url);
        message.textContent = 'Your browser asks whether tel: links may open here.';
      } catch (err) {
        message.textContent = 'This browser would not register webdial for tel: links: ' + err;
      }
    });
  }

  offerTelHandler();
  if (!branch || !ext || !number) {
    state.setAttribute('data-state', 'failed');
    state.textContent = 'Cannot call';
    message.textContent = 'This link needs branch, ext and number: /call?branch=B&ext=E&number=N';
    return;
  }
  button.addEventListener('click', dial);
  P.authenticate(function (who) {
    if (who.branches && who.branches.indexOf(branch) < 0) {
      message.textContent = 'This key (' + who.key + ') may not use branch ' + branch + '.';
      return;
    }
    button.disabled = false;
    // Each time the stream (re)opens, the call record fills in what it missed meanwhile.
    P.stream('/v1/events?branch=' + encodeURIComponent(branch) + '&extension=' + encodeURIComponent(ext),
      'call', onEvent, function (s) { if (s === 'open' && dialId !== null) { catchUp(); } });
  });
}());
