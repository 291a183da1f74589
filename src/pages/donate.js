// chipin: progressive enhancement of the donate form. Without this file the form posts to
// /api/checkout and the API answers 303 to Checkout; with it, the form posts JSON with an
// Idempotency-Key (one per choice), shows the API's errors next to their fields, cannot be
// sent twice, and then goes to Checkout (in the top window when embedded).
(function () {
  'use strict';

  var STORE = 'chipin.choice';
  var LABELS = { amount: 'Amount', amount_major: 'Amount', email: 'Email', frequency: 'Frequency', cover_fees: 'Fee cover' };

  function randomKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  // "25", "25.5", "25,50" -> minor units, or null (the server's rule, for the live fee only).
  function toMinor(text) {
    var m = /^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$/.exec(text || '');
    if (!m) return null;
    return parseInt(m[1], 10) * 100 + (m[2] ? parseInt((m[2] + '0').slice(0, 2), 10) : 0);
  }

  function enhanceForm(form) {
    var currency = form.getAttribute('data-currency') || 'usd';
    var bps = parseInt(form.getAttribute('data-fee-bps'), 10) || 0;
    var fixed = parseInt(form.getAttribute('data-fee-fixed'), 10) || 0;
    var embedded = form.getAttribute('data-embed') === '1' || window.top !== window.self;
    var button = document.getElementById('give');
    var buttonText = button.textContent;
    var custom = document.getElementById('amount_major');
    var other = document.getElementById('amount-other');
    var feeOut = document.getElementById('fee-amount');
    var keys = {};
    var busy = false;
    var format;
    try {
      format = new Intl.NumberFormat(document.documentElement.lang || 'en', { style: 'currency', currency: currency.toUpperCase() });
    } catch (e) {
      format = { format: function (n) { return n.toFixed(2) + ' ' + currency.toUpperCase(); } };
    }

    form.noValidate = true;

    function checked(name) {
      var el = form.querySelector('input[name="' + name + '"]:checked');
      return el ? el.value : null;
    }

    function chosenMinor() {
      var v = checked('amount');
      if (v === 'other') return toMinor(custom.value);
      return v ? parseInt(v, 10) : null;
    }

    function fee(minor) {
      return Math.ceil(((minor + fixed) * 10000) / (10000 - bps)) - minor;
    }

    function updateFee() {
      if (!feeOut) return;
      var minor = chosenMinor();
      var preset = form.querySelector('input[name="amount"]:checked[data-fee]');
      if (preset) feeOut.textContent = format.format(parseInt(preset.getAttribute('data-fee'), 10) / 100);
      else if (minor) feeOut.textContent = format.format(fee(minor) / 100);
      else feeOut.textContent = feeOut.getAttribute('data-rule');
      var hint = document.getElementById('cover_fees-hint');
      if (hint && minor) hint.firstChild.textContent = 'So that we receive all of your ' + format.format(minor / 100) + ' gift. ';
    }

    function errorBox(field) {
      return (field && document.getElementById(field + '-error')) || document.getElementById('form-error');
    }

    function clearErrors() {
      Array.prototype.forEach.call(form.querySelectorAll('.error'), function (el) { el.textContent = ''; });
      Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid]'), function (el) { el.removeAttribute('aria-invalid'); });
    }

    function humane(field, message) {
      if (field && message.indexOf(field + ' ') === 0 && LABELS[field]) {
        return LABELS[field] + ' ' + message.slice(field.length + 1);
      }
      return message;
    }

    function showError(field, message) {
      var box = errorBox(field);
      box.textContent = humane(field, message);
      var input = field === 'amount_major' ? custom : field === 'email' ? document.getElementById('email') : null;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      } else if (field === 'amount' || field === 'frequency' || field === 'cover_fees') {
        var first = form.querySelector('input[name="' + field + '"]:checked') || form.querySelector('input[name="' + field + '"]');
        if (first) first.focus();
      }
    }

    function collect() {
      var body = {};
      var amount = checked('amount');
      if (amount === 'other') body.amount_major = custom.value.trim();
      else if (amount) body.amount = parseInt(amount, 10);
      body.frequency = checked('frequency');
      var cover = document.getElementById('cover_fees');
      if (cover) body.cover_fees = cover.checked;
      var email = document.getElementById('email').value.trim();
      if (email) body.email = email;
      Array.prototype.forEach.call(form.querySelectorAll('input[type="hidden"]'), function (el) {
        if (el.value) body[el.name] = el.value;
      });
      var trap = document.getElementById('website');
      if (trap && trap.value) body.website = trap.value;
      return body;
    }

    function keyFor(body) {
      var choice = JSON.stringify(body);
      if (!keys[choice]) keys[choice] = randomKey();
      return keys[choice];
    }

    function remember(body) {
      try {
        var saved = {};
        ['amount', 'amount_major', 'frequency', 'campaign', 'utm_source', 'utm_medium', 'utm_campaign'].forEach(function (k) {
          if (body[k] !== undefined && body[k] !== null && body[k] !== '') saved[k] = String(body[k]);
        });
        if (body.cover_fees) saved.cover_fees = '1';
        window.sessionStorage.setItem(STORE, JSON.stringify(saved));
      } catch (e) { /* storage may be off; the choice is then simply not kept */ }
    }

    function done() {
      busy = false;
      button.removeAttribute('aria-disabled');
      button.textContent = buttonText;
    }

    function go(url) {
      if (!embedded) { window.location.assign(url); return; }
      try {
        window.top.location.href = url;
      } catch (e) {
        // The host page's browser refused to let the frame navigate it: offer a link.
        var p = document.getElementById('continue');
        var a = document.createElement('a');
        a.href = url;
        a.target = '_top';
        a.rel = 'noopener';
        a.textContent = 'Continue to the secure payment page';
        p.textContent = '';
        p.appendChild(a);
        p.hidden = false;
        a.focus();
        done();
      }
    }

    form.addEventListener('change', updateFee);
    custom.addEventListener('input', function () {
      if (custom.value.trim() && !other.checked) other.checked = true;
      updateFee();
    });
    custom.addEventListener('focus', function () { if (!checked('amount')) other.checked = true; updateFee(); });

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) return;
      clearErrors();
      var body = collect();
      if (body.amount === undefined && body.amount_major === undefined) {
        showError('amount', 'Please choose an amount.');
        return;
      }
      if (body.amount_major === '') {
        showError('amount_major', 'Please enter an amount, such as 25 or 25.50.');
        return;
      }
      busy = true;
      button.setAttribute('aria-disabled', 'true');
      button.textContent = 'Starting secure checkout…';
      fetch(form.getAttribute('action'), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'Idempotency-Key': keyFor(body) },
        body: JSON.stringify(body)
      }).then(function (res) {
        return res.json().then(function (data) { return { res: res, data: data }; }, function () { return { res: res, data: null }; });
      }).then(function (r) {
        if (r.res.ok && r.data && r.data.checkout_url) {
          remember(body);
          button.textContent = 'Opening the payment page…';
          go(r.data.checkout_url);
          return;
        }
        var err = r.data && r.data.error;
        if (err && err.message) showError(err.field || null, err.message);
        else showError(null, 'Something went wrong on our side. Please try again in a moment.');
        done();
      }).catch(function () {
        showError(null, 'We could not reach the server. Please check your connection and try again.');
        done();
      });
    });

    updateFee();
  }

  // The cancelled page: the way back keeps the choice made before leaving for Checkout.
  function restoreChoice(link) {
    if (link.getAttribute('href') !== '/donate') return;
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(STORE) || 'null');
      if (!saved) return;
      var params = new URLSearchParams();
      Object.keys(saved).forEach(function (k) { params.set(k, saved[k]); });
      var q = params.toString();
      if (q) link.setAttribute('href', '/donate?' + q);
    } catch (e) { /* keep the plain link */ }
  }

  var form = document.getElementById('donate');
  if (form) enhanceForm(form);
  var back = document.getElementById('back-to-form');
  if (back) restoreChoice(back);
})();
