// chipin staff dashboard: no framework, no build step. The token is asked for once and kept
// in sessionStorage (this tab only); it travels in the Authorization header, never in a URL.
// Amounts arrive as integer minor units and are shown in major units; currencies are never
// added together (one currency per view).
(function () {
  "use strict";

  var KEY = "chipin.reports.token";
  var SVG = "http://www.w3.org/2000/svg";
  var $ = function (id) { return document.getElementById(id); };
  var current = null; // the parameters of the summary on screen

  function token() { return sessionStorage.getItem(KEY); }

  function setStatus(text, isError) {
    var s = $("status");
    s.textContent = text || "";
    s.className = isError ? "status error" : "status";
  }

  function showSignedIn(on) {
    $("sign-in").hidden = on;
    $("controls").hidden = !on;
    $("books").hidden = !on;
    $("who").hidden = !on;
    if (!on) { $("report").hidden = true; }
  }

  // 123456 -> "1,234.56"; -1000 -> "-10.00"
  function money(minor) {
    var n = Number(minor) || 0;
    var sign = n < 0 ? "-" : "";
    n = Math.abs(n);
    var whole = String(Math.floor(n / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = String(n % 100);
    if (cents.length < 2) { cents = "0" + cents; }
    return sign + whole + "." + cents;
  }

  function isMoney(key) {
    return /(gross|refunded|disputed|refunds|disputes|other|net|fee|mrr|average|median|amount|revenue|threshold)/.test(key);
  }

  function show(key, value) {
    if (value === null || value === undefined) { return ""; }
    if (typeof value === "number") {
      if (/share/.test(key)) { return (value * (value <= 1 ? 100 : 1)).toFixed(1) + "%"; }
      return isMoney(key) ? money(value) : String(value);
    }
    if (typeof value === "object") { return ""; }
    return String(value);
  }

  function label(key) { return key.replace(/_/g, " "); }

  function scalarKeys(obj, skip) {
    return Object.keys(obj || {}).filter(function (k) {
      var v = obj[k];
      return skip.indexOf(k) < 0 && (v === null || typeof v !== "object");
    });
  }

  function cell(tag, text, key) {
    var c = document.createElement(tag);
    c.textContent = text;
    if (key) { c.setAttribute("data-key", key); }
    return c;
  }

  function api(path, accept) {
    return fetch(path, {
      headers: { "Authorization": "Bearer " + token(), "Accept": accept || "application/json" },
      credentials: "omit",
      cache: "no-store"
    });
  }

  function failure(res) {
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      showSignedIn(false);
      return "That token was not accepted (missing, unknown or revoked). Enter it again.";
    }
    if (res.status === 403) { return "Your role does not allow this (it needs finance)."; }
    return null;
  }

  function params() {
    var p = {
      from: $("from").value.trim(),
      to: $("to").value.trim(),
      interval: $("interval").value,
      currency: $("currency").value
    };
    var c = $("campaign").value.trim();
    if (c) { p.campaign = c; }
    return p;
  }

  function query(p) {
    return Object.keys(p).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(p[k]);
    }).join("&");
  }

  function load() {
    var p = params();
    setStatus("Loading…");
    api("/api/reports/summary?" + query(p)).then(function (res) {
      if (!res.ok) {
        var known = failure(res);
        return res.json().catch(function () { return {}; }).then(function (body) {
          var e = body && body.error;
          setStatus(known || (e ? e.message + (e.field ? " (" + e.field + ")" : "") : "The summary could not be loaded."), true);
        });
      }
      return res.json().then(function (summary) {
        current = p;
        try { history.replaceState(null, "", "#" + query(p)); } catch (e) { /* not essential */ }
        render(summary);
        setStatus("");
      });
    }).catch(function () { setStatus("The server could not be reached.", true); });
  }

  function render(s) {
    $("report").hidden = false;
    $("range-label").textContent = s.from + " to " + s.to + ", " + String(s.currency).toUpperCase() +
      ", by " + s.interval + " (" + s.time_zone + ")" + (s.campaign ? ", campaign " + s.campaign : "");

    var totals = $("totals").tBodies[0];
    totals.textContent = "";
    scalarKeys(s.total, []).forEach(function (k) {
      var tr = document.createElement("tr");
      tr.id = "total-" + k;
      tr.appendChild(cell("th", label(k)));
      tr.appendChild(cell("td", show(k, s.total[k]), k));
      totals.appendChild(tr);
    });

    var periods = s.periods || [];
    var keys = scalarKeys(periods[0] || s.total, ["start"]);
    var table = $("periods");
    table.tHead.textContent = "";
    var head = document.createElement("tr");
    head.appendChild(cell("th", "period"));
    keys.forEach(function (k) { head.appendChild(cell("th", label(k))); });
    table.tHead.appendChild(head);
    var body = table.tBodies[0];
    body.textContent = "";
    periods.forEach(function (p) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-start", p.start);
      tr.appendChild(cell("th", p.start));
      keys.forEach(function (k) { tr.appendChild(cell("td", show(k, p[k]), k)); });
      body.appendChild(tr);
    });

    chart($("chart"), periods.map(function (p) {
      return { label: p.start, parts: [
        { name: "one-time", value: Number(p.one_time_net) || 0 },
        { name: "recurring", value: Number(p.recurring_net) || 0 }
      ] };
    }));
    renderBands(s);
  }

  // Bands as the summary carries them: an array of {band|name, ...} or an object by name.
  function bandList(b) {
    if (!b) { return []; }
    if (Array.isArray(b)) {
      return b.map(function (x, i) { return { name: String(x.band || x.name || ("band " + (i + 1))), figures: x }; });
    }
    if (typeof b === "object") {
      return Object.keys(b).map(function (k) {
        return { name: k, figures: typeof b[k] === "object" ? b[k] : { net: b[k] } };
      });
    }
    return [];
  }

  function renderBands(s) {
    var overall = bandList(s.bands || (s.total && s.total.bands));
    var block = $("bands-block");
    block.hidden = overall.length === 0;
    if (block.hidden) { return; }
    var table = $("bands");
    var keys = [];
    overall.forEach(function (b) {
      scalarKeys(b.figures, ["band", "name"]).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } });
    });
    table.tHead.textContent = "";
    var head = document.createElement("tr");
    head.appendChild(cell("th", "band"));
    keys.forEach(function (k) { head.appendChild(cell("th", label(k))); });
    table.tHead.appendChild(head);
    var body = table.tBodies[0];
    body.textContent = "";
    overall.forEach(function (b) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-band", b.name);
      tr.appendChild(cell("th", b.name));
      keys.forEach(function (k) { tr.appendChild(cell("td", show(k, b.figures[k]), k)); });
      body.appendChild(tr);
    });
    // Net per period, small (the first band) and large (the others), where periods carry bands.
    var periods = (s.periods || []).filter(function (p) { return p.bands; });
    if (periods.length) {
      chart($("bands-chart"), periods.map(function (p) {
        var list = bandList(p.bands);
        var small = list.length ? Number(list[0].figures.net) || 0 : 0;
        var large = list.slice(1).reduce(function (a, b) { return a + (Number(b.figures.net) || 0); }, 0);
        return { label: p.start, parts: [{ name: "small", value: small }, { name: "large", value: large }] };
      }));
    } else {
      $("bands-chart").textContent = "";
    }
  }

  // Stacked bars: positive parts above the zero line, negative ones below.
  function chart(host, bars) {
    host.textContent = "";
    var width = Math.max(320, bars.length * 48 + 60), height = 220, top = 10, bottom = 40, left = 50;
    var hi = 0, lo = 0;
    bars.forEach(function (b) {
      var pos = 0, neg = 0;
      b.parts.forEach(function (p) { if (p.value > 0) { pos += p.value; } else { neg += p.value; } });
      hi = Math.max(hi, pos); lo = Math.min(lo, neg);
    });
    if (hi === lo) { hi = lo + 100; }
    var plot = height - top - bottom;
    var y = function (v) { return top + (hi - v) / (hi - lo) * plot; };
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Net per period");
    var axis = function (v) {
      var t = document.createElementNS(SVG, "text");
      t.setAttribute("x", String(left - 6));
      t.setAttribute("y", String(y(v) + 4));
      t.setAttribute("class", "axis");
      t.setAttribute("text-anchor", "end");
      t.textContent = money(v);
      svg.appendChild(t);
    };
    axis(hi); if (lo < 0) { axis(lo); }
    var zero = document.createElementNS(SVG, "line");
    zero.setAttribute("x1", String(left)); zero.setAttribute("x2", String(width));
    zero.setAttribute("y1", String(y(0))); zero.setAttribute("y2", String(y(0)));
    zero.setAttribute("class", "zero");
    svg.appendChild(zero);
    var step = (width - left) / Math.max(1, bars.length);
    bars.forEach(function (b, i) {
      var g = document.createElementNS(SVG, "g");
      g.setAttribute("class", "bar");
      g.setAttribute("data-label", b.label);
      var x = left + i * step + step * 0.15, w = step * 0.7, up = 0, down = 0;
      var tip = [b.label];
      b.parts.forEach(function (p) {
        g.setAttribute("data-" + p.name, String(p.value));
        tip.push(p.name + " " + money(p.value));
        if (!p.value) { return; }
        var from = p.value > 0 ? up : down, to = from + p.value;
        if (p.value > 0) { up = to; } else { down = to; }
        var r = document.createElementNS(SVG, "rect");
        r.setAttribute("x", String(x)); r.setAttribute("width", String(w));
        r.setAttribute("y", String(Math.min(y(from), y(to))));
        r.setAttribute("height", String(Math.abs(y(from) - y(to))));
        r.setAttribute("class", p.name);
        g.appendChild(r);
      });
      var title = document.createElementNS(SVG, "title");
      title.textContent = tip.join(", ");
      g.appendChild(title);
      var t = document.createElementNS(SVG, "text");
      t.setAttribute("x", String(x + w / 2)); t.setAttribute("y", String(height - bottom + 16));
      t.setAttribute("text-anchor", "middle"); t.setAttribute("class", "axis");
      t.textContent = b.label;
      g.appendChild(t);
      svg.appendChild(g);
    });
    host.appendChild(svg);
  }

  function download(kind) {
    if (!current) { return; }
    var p = current, path, name;
    var year = p.to.slice(0, 4);
    if (kind === "summary") {
      path = "/api/reports/summary?" + query(p) + "&format=csv"; name = "summary-" + p.from + "-" + p.to + ".csv";
    } else if (kind === "gifts") {
      var g = { from: p.from, to: p.to };
      if (p.campaign) { g.campaign = p.campaign; }
      path = "/api/reports/gifts?" + query(g) + "&format=csv"; name = "gifts-" + p.from + "-" + p.to + ".csv";
    } else if (kind === "statements") {
      path = "/api/reports/statements?year=" + year + "&format=csv"; name = "statements-" + year + ".csv";
    } else {
      path = "/api/reports/lybunt?year=" + year + "&format=csv"; name = "lybunt-" + year + ".csv";
    }
    setStatus("Preparing " + name + "…");
    api(path, "text/csv").then(function (res) {
      if (!res.ok) { setStatus(failure(res) || "The download failed.", true); return null; }
      return res.blob().then(function (blob) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = name;
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
        setStatus("Downloaded " + name + ".");
      });
    }).catch(function () { setStatus("The download failed.", true); });
  }

  function table(id, rows, keys) {
    var head = $(id).querySelector("thead"), body = $(id).querySelector("tbody");
    head.textContent = ""; body.textContent = "";
    var tr = document.createElement("tr");
    keys.forEach(function (k) { tr.appendChild(cell("th", label(k))); });
    head.appendChild(tr);
    return rows.map(function (r) {
      var row = document.createElement("tr");
      keys.forEach(function (k) { row.appendChild(cell("td", show(k, r[k]), k)); });
      body.appendChild(row);
      return row;
    });
  }

  function fetchJson(path, what, options) {
    var init = options || {};
    init.headers = { "Authorization": "Bearer " + token(), "Accept": "application/json", "Content-Type": "application/json" };
    init.credentials = "omit";
    init.cache = "no-store";
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (res.ok) { return body; }
        var e = body && body.error;
        setStatus(failure(res) || (e ? e.message + (e.field ? " (" + e.field + ")" : "") : what + " could not be loaded."), true);
        return null;
      });
    }).catch(function () { setStatus("The server could not be reached.", true); return null; });
  }

  function loadPayouts() {
    var p = { from: $("from").value.trim(), to: $("to").value.trim() };
    fetchJson("/api/reports/payouts?" + query(p), "The payouts").then(function (body) {
      if (!body) { return; }
      table("payouts", body.payouts, ["payout_id", "arrival_date", "status", "currency", "gross", "fees",
        "refunds", "disputes", "other", "amount", "items", "unmatched"]);
      setStatus(body.payouts.length + " payouts.");
    });
  }

  function loadIssues() {
    fetchJson("/api/reports/reconciliation?status=open", "The differences").then(function (body) {
      if (!body) { return; }
      var keys = ["day", "kind", "object_id", "ours_amount", "theirs_amount", "ours_fee", "theirs_fee",
        "ours_currency", "theirs_currency", "last_seen"];
      var rows = table("issues", body.issues, keys);
      $("issues").querySelector("thead tr").appendChild(cell("th", ""));
      rows.forEach(function (row, i) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = "Acknowledge…";
        b.addEventListener("click", function () { acknowledge(body.issues[i].id); });
        var td = document.createElement("td");
        td.appendChild(b);
        row.appendChild(td);
      });
      $("issues-empty").hidden = body.issues.length > 0;
      setStatus(body.issues.length + " open differences (days in " + body.time_zone + ").");
    });
  }

  function acknowledge(id) {
    var reason = window.prompt("Why is this difference acceptable? (kept with your name)");
    if (reason === null) { return; }
    fetchJson("/api/reports/reconciliation/issues/" + encodeURIComponent(id) + "/ack", "The acknowledgement",
      { method: "POST", body: JSON.stringify({ reason: reason }) }).then(function (body) {
      if (body) { loadIssues(); }
    });
  }

  // A bookmarked view: #from=...&to=...&interval=...&currency=...&campaign=... (never the token)
  function fromHash() {
    var changed = false;
    (location.hash || "").replace(/^#/, "").split("&").forEach(function (pair) {
      var kv = pair.split("=");
      var el = { from: "from", to: "to", interval: "interval", currency: "currency", campaign: "campaign" }[kv[0]];
      if (el && kv.length === 2) {
        var v = decodeURIComponent(kv[1]);
        if ($(el).value !== v) { $(el).value = v; changed = true; }
      }
    });
    return changed;
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function init() {
    var now = new Date();
    $("from").value = now.getFullYear() + "-01-01";
    $("to").value = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
    fromHash();
    window.addEventListener("hashchange", function () {
      if (fromHash() && token()) { load(); }
    });
    $("token-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var t = $("token").value.trim();
      if (!t) { return; }
      sessionStorage.setItem(KEY, t);
      $("token").value = "";
      showSignedIn(true);
      load();
    });
    $("sign-out").addEventListener("click", function () {
      sessionStorage.removeItem(KEY);
      showSignedIn(false);
      setStatus("Signed out.");
    });
    $("range-form").addEventListener("submit", function (e) { e.preventDefault(); load(); });
    $("load-payouts").addEventListener("click", loadPayouts);
    $("load-issues").addEventListener("click", loadIssues);
    Array.prototype.forEach.call(document.querySelectorAll(".downloads button"), function (b) {
      b.addEventListener("click", function () { download(b.getAttribute("data-kind")); });
    });
    if (token()) { showSignedIn(true); load(); } else { showSignedIn(false); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
