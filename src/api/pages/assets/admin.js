// The admin page: branches (GET /v1/admin/branches) with a test form each
// (POST /v1/admin/dial, which needs an admin key), the last reload
// (GET|POST /v1/admin/reload), recent dials (GET /v1/calls) and live
// events (GET /v1/events). Every value is placed with textContent.
(function () {
  'use strict';
  var P = window.WebdialPage;
  var MAX_EVENTS = 200;
  var refreshTimer = null;
  var events = null;

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function testForm(branch) {
    var form = P.el('form', { 'class': 'test', 'data-branch': branch });
    var ext = P.el('input', { type: 'text', name: 'extension', placeholder: 'extension', 'aria-label': 'extension', required: '', autocomplete: 'off' });
    var num = P.el('input', { type: 'text', name: 'number', placeholder: 'number', 'aria-label': 'number', required: '', autocomplete: 'off' });
    var dry = P.el('input', { type: 'checkbox', name: 'dry_run' });
    dry.checked = true;
    var dryLabel = P.el('label', {});
    dryLabel.appendChild(dry);
    dryLabel.appendChild(document.createTextNode(' dry run'));
    var button = P.el('button', { type: 'submit' }, 'Try');
    var result = P.el('output', { 'class': 'result' });
    [ext, num, dryLabel, button, result].forEach(function (n) { form.appendChild(n); });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      button.disabled = true;
      result.removeAttribute('data-status');
      result.textContent = '…';
      var body = { branch: branch, extension: ext.value, number: num.value, dry_run: dry.checked };
      P.api('POST', '/v1/admin/dial', body, { 'Idempotency-Key': P.randomId() }).then(function (answer) {
        button.disabled = false;
        var b = answer.body || {};
        result.setAttribute('data-status', b.status || 'error');
        if (answer.status === 401) {
          result.textContent = P.words(answer);
          P.askKey(P.words(answer), start);
          return;
        }
        var text = (b.status || 'error') + (b.message ? ': ' + b.message : '');
        if (answer.status >= 400 || answer.status === 0) { text = P.words(answer); }
        if (b.request) { text += '\n' + JSON.stringify(b.request, null, 2); }
        else if (b.call_id) { text += ' (call ' + b.call_id + ', id ' + b.id + ')'; }
        result.textContent = text;
        scheduleRecent();
      });
    });
    return form;
  }

  function loadBranches() {
    var tbody = document.querySelector('#branches tbody');
    var error = document.getElementById('branches-error');
    P.api('GET', '/v1/admin/branches').then(function (answer) {
      if (answer.status === 401) { P.askKey(P.words(answer), start); return; }
      if (answer.status !== 200) { error.textContent = P.words(answer); return; }
      error.textContent = '';
      clear(tbody);
      (answer.body.branches || []).forEach(function (b) {
        var row = P.el('tr', { 'data-branch': b.branch, 'data-state': b.state });
        var name = P.el('td', { 'class': 'name' }, b.branch);
        if (b.name) { name.appendChild(P.el('div', { 'class': 'display-name' }, b.name)); }
        var state = b.state + (b.state === 'failed' && b.served ? ' (its last good version is served)' : '');
        row.appendChild(name);
        row.appendChild(P.el('td', { 'class': 'state' }, state));
        row.appendChild(P.el('td', { 'class': 'error' }, b.error || ''));
        var test = P.el('td', { 'class': 'test' });
        if (b.served) { test.appendChild(testForm(b.branch)); }
        row.appendChild(test);
        tbody.appendChild(row);
      });
    });
  }

  function showReload(report) {
    var summary = document.getElementById('reload-summary');
    var list = document.getElementById('reload-problems');
    summary.setAttribute('data-ok', String(!!report.ok));
    var parts = [(report.ok ? 'OK' : 'Problems') + ' — ' + (report.trigger || '') + ' at ' + (report.at || ''),
      (report.branches || 0) + ' branches served'];
    [['added', report.added], ['changed', report.changed], ['removed', report.removed], ['kept', report.kept],
      ['restart needed for', report.restart_needed]].forEach(function (p) {
      if (p[1] && p[1].length) { parts.push(p[0] + ': ' + p[1].join(', ')); }
    });
    summary.textContent = parts.join('; ');
    clear(list);
    (report.problems || []).forEach(function (p) { list.appendChild(P.el('li', { 'class': 'error' }, p)); });
  }

  function loadReload(method) {
    var summary = document.getElementById('reload-summary');
    P.api(method, '/v1/admin/reload').then(function (answer) {
      if (answer.status === 401) { P.askKey(P.words(answer), start); return; }
      if (answer.status !== 200) { summary.textContent = P.words(answer); return; }
      showReload(answer.body);
      if (method === 'POST') { loadBranches(); }
    });
  }

  function loadRecent() {
    var tbody = document.querySelector('#recent tbody');
    var error = document.getElementById('recent-error');
    P.api('GET', '/v1/calls?limit=50').then(function (answer) {
      if (answer.status === 401) { P.askKey(P.words(answer), start); return; }
      if (answer.status !== 200) { error.textContent = P.words(answer); return; }
      error.textContent = '';
      clear(tbody);
      (answer.body.calls || []).forEach(function (c) {
        var row = P.el('tr', { 'data-id': c.id, 'data-state': c.state });
        [c.created, c.branch, c.action, c.extension, c.dialled ? c.number + ' → ' + c.dialled : c.number,
          c.status + (c.message ? ': ' + c.message : ''), c.state].forEach(function (v) {
          row.appendChild(P.el('td', {}, v === null || v === undefined ? '' : v));
        });
        tbody.appendChild(row);
      });
    });
  }

  function scheduleRecent() {
    if (refreshTimer) { return; }
    refreshTimer = window.setTimeout(function () { refreshTimer = null; loadRecent(); }, 300);
  }

  function showEvent(e) {
    var list = document.getElementById('events');
    var text = [e.at, e.branch, e.type, e.direction || '', 'ext ' + (e.extension || '?'),
      e.remote ? '↔ ' + e.remote : '', e.call_id ? 'call ' + e.call_id : '', e.dial_id ? 'dial ' + e.dial_id : '']
      .filter(function (s) { return s; }).join('  ');
    var item = P.el('li', { 'data-type': e.type, 'data-id': e.id }, text);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > MAX_EVENTS) { list.removeChild(list.lastChild); }
    scheduleRecent();
  }

  function start() {
    P.authenticate(function (who) {
      var line = who.key ? 'Key: ' + who.key + (who.admin ? ' (admin)' : ' (not an admin key)') : 'No keys configured';
      if (who.branches) { line += ' — branches: ' + who.branches.join(', '); }
      document.getElementById('who').textContent = line;
      loadBranches();
      loadReload('GET');
      loadRecent();
      if (events) { events.close(); }
      var state = document.getElementById('events-state');
      events = P.stream('/v1/events', 'call', showEvent, function (s) {
        state.textContent = s === 'open' ? '(live)' : '(reconnecting…)';
      });
    });
  }

  document.getElementById('reload-now').addEventListener('click', function () { loadReload('POST'); });
  start();
}());
