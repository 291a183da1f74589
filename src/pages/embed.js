// chipin embed: <script src="https://give.example.org/embed.js" data-campaign="spring"></script>
// renders a button where the tag is; the button opens the donate form in an overlay iframe.
// Styles are set through the CSSOM (element.style), which a host page's CSP allows.
(function () {
  'use strict';
  var BASE = __CHIPIN_BASE__;
  var LABEL = __CHIPIN_LABEL__;
  var TITLE = __CHIPIN_TITLE__;
  var BRAND = __CHIPIN_BRAND__;
  var ON_BRAND = __CHIPIN_ON_BRAND__;

  var script = document.currentScript;
  if (!script || !script.parentNode) return;

  function css(el, styles) {
    Object.keys(styles).forEach(function (k) { el.style[k] = styles[k]; });
    return el;
  }

  var params = new URLSearchParams();
  params.set('embed', '1');
  var campaign = script.getAttribute('data-campaign');
  if (campaign) params.set('campaign', campaign);
  var here = new URLSearchParams(window.location.search);
  ['utm_source', 'utm_medium', 'utm_campaign'].forEach(function (k) {
    var v = here.get(k);
    if (v) params.set(k, v);
  });
  var src = BASE + '/donate?' + params.toString();

  var button = css(document.createElement('button'), {
    background: BRAND, color: ON_BRAND, border: '0', borderRadius: '0.5rem',
    padding: '0.75rem 1.25rem', font: 'inherit', fontWeight: '700', cursor: 'pointer', minHeight: '44px'
  });
  button.type = 'button';
  button.className = 'chipin-embed-button';
  button.textContent = script.getAttribute('data-label') || LABEL;
  button.setAttribute('aria-haspopup', 'dialog');
  script.parentNode.insertBefore(button, script.nextSibling);

  var overlay = null;
  var returnFocus = null;
  var overflow = '';

  function close() {
    if (!overlay) return;
    document.removeEventListener('keydown', onKey, true);
    document.removeEventListener('focusin', onFocus, true);
    overlay.parentNode.removeChild(overlay);
    overlay = null;
    document.documentElement.style.overflow = overflow;
    if (returnFocus && returnFocus.focus) returnFocus.focus();
  }

  function onKey(e) {
    if (e.key === 'Escape') { e.preventDefault(); close(); }
  }

  function onFocus(e) {
    // Focus stays in the dialog while it is open.
    if (overlay && !overlay.contains(e.target)) overlay.querySelector('button').focus();
  }

  function open() {
    if (overlay) return;
    returnFocus = document.activeElement;
    overlay = css(document.createElement('div'), {
      position: 'fixed', top: '0', right: '0', bottom: '0', left: '0', zIndex: '2147483000',
      background: 'rgba(0, 0, 0, 0.6)', display: 'flex', alignItems: 'center', justifyContent: 'center'
    });
    var dialog = css(document.createElement('div'), {
      position: 'relative', width: '100%', maxWidth: '34rem', height: '100%', maxHeight: '48rem',
      background: '#ffffff', borderRadius: '0.5rem', overflow: 'hidden', boxShadow: '0 8px 32px rgba(0,0,0,0.35)'
    });
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-label', TITLE);
    var closer = css(document.createElement('button'), {
      position: 'absolute', top: '0.5rem', right: '0.5rem', zIndex: '1', minWidth: '44px', minHeight: '44px',
      background: '#ffffff', color: '#1b1b1b', border: '2px solid #1b1b1b', borderRadius: '0.5rem',
      font: 'inherit', fontWeight: '700', cursor: 'pointer'
    });
    closer.type = 'button';
    closer.textContent = 'Close';
    closer.setAttribute('aria-label', 'Close the donation form');
    closer.addEventListener('click', close);
    var frame = css(document.createElement('iframe'), { width: '100%', height: '100%', border: '0', display: 'block' });
    frame.title = TITLE;
    frame.src = src;
    dialog.appendChild(closer);
    dialog.appendChild(frame);
    overlay.appendChild(dialog);
    overlay.addEventListener('click', function (e) { if (e.target === overlay) close(); });
    document.body.appendChild(overlay);
    overflow = document.documentElement.style.overflow;
    document.documentElement.style.overflow = 'hidden';
    document.addEventListener('keydown', onKey, true);
    document.addEventListener('focusin', onFocus, true);
    frame.focus();
  }

  button.addEventListener('click', open);
})();
