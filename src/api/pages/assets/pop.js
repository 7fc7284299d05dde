// The screen-pop page: /pop?extension=E[&branch=B]. Each incoming call to
// E as it rings (GET /v1/pop), newest first, with the caller and the link
// the gateway built from `pop.link` (only http/https; values encoded there).
(function () {
  'use strict';
  var P = window.WebdialPage;
  var MAX = 50;
  var extension = P.param('extension') || P.param('ext');
  var branch = P.param('branch');
  var list = document.getElementById('calls');
  var message = document.getElementById('message');
  var state = document.getElementById('pop-state');
  document.getElementById('extension').textContent = extension;
  var seen = {};

  function show(pop) {
    if (seen[pop.id]) { return; }
    seen[pop.id] = true;
    var item = P.el('li', { 'class': 'pop', 'data-dial-id': pop.dial_id || '', 'data-id': pop.id });
    item.appendChild(P.el('span', { 'class': 'remote' }, pop.remote || 'unknown caller'));
    item.appendChild(P.el('span', { 'class': 'at' }, pop.at));
    if (pop.link && /^https?:\/\//i.test(pop.link)) {
      var a = P.el('a', { 'class': 'pop-link', href: pop.link, target: '_blank', rel: 'noopener noreferrer' },
        'Open in CRM');
      item.appendChild(a);
    }
    list.insertBefore(item, list.firstChild);
    while (list.children.length > MAX) {
      var last = list.lastChild;
      delete seen[last.getAttribute('data-id')];
      list.removeChild(last);
    }
  }

  if (!extension) {
    message.textContent = 'This page needs an extension: /pop?extension=E';
    return;
  }
  P.authenticate(function () {
    var path = '/v1/pop?extension=' + encodeURIComponent(extension) + (branch ? '&branch=' + encodeURIComponent(branch) : '');
    P.stream(path, 'pop', show, function (s) { state.textContent = s === 'open' ? '(waiting for calls)' : '(reconnecting…)'; });
  });
}());
