// Switchboard console: live rows and the dashboard's charts. Loaded as a
// file (the CSP allows no inline script); htmx runs without eval.
(function () {
  "use strict";

  // Live rows arrive over server-sent events, which htmx's SSE extension
  // prepends to the inspector. A reconnect may resend a row: skip rows
  // already shown, keep the table bounded, and mark new rows.
  var maxRows = 500;

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var id = evt.detail && evt.detail.lastEventId;
    if (id && document.querySelector('#events-rows tr[data-event-id="' + CSS.escape(id) + '"]')) {
      evt.preventDefault();
    }
  });

  document.addEventListener("htmx:sseMessage", function (evt) {
    var body = evt.target;
    if (!body || body.id !== "events-rows") return;
    var first = body.firstElementChild;
    if (first) first.classList.add("fresh");
    while (body.children.length > maxRows) body.removeChild(body.lastElementChild);
    var none = document.getElementById("no-events");
    if (none) none.remove();
  });

  function live(on) {
    var el = document.getElementById("live-indicator");
    if (el) el.classList.toggle("off", !on);
  }
  document.addEventListener("htmx:sseOpen", function () { live(true); });
  document.addEventListener("htmx:sseError", function () { live(false); });

  // The dashboard: one uPlot chart per figure[data-chart], drawn from the
  // JSON the page embeds and refreshed from dashboard.json every minute.
  var palette = ["#2d5bd7", "#1d7a46", "#b42318", "#9a6700", "#7a3fb8", "#0f7c8a", "#c2410c", "#4b5563"];

  function color(i) { return palette[i % palette.length]; }

  // sparse shows a series' points when it has few values: a lone
  // minute of traffic between empty ones would draw no line at all.
  function sparse(u, si) {
    var v = u.data[si] || [], n = 0;
    for (var i = 0; i < v.length; i++) if (v[i] !== null && v[i] !== undefined) n++;
    return n < 40;
  }

  function line(label, values, i, dash) {
    var s = { label: label, stroke: color(i), width: 1.5, spanGaps: false, points: { show: sparse, size: 6, fill: color(i) } };
    if (dash) s.dash = [6, 4];
    return { spec: s, values: values || [] };
  }

  // fit pads a series to the buckets' count: uPlot needs every series as
  // long as the times.
  function fit(values, n) {
    var out = values.slice(0, n);
    while (out.length < n) out.push(null);
    return out;
  }

  // chartLines returns the lines of each chart from the dashboard's data.
  function chartLines(d) {
    var routes = d.routes || [], pools = d.pools || [];
    var out = {
      webhooks: [line("accepted", d.accepted, 1), line("duplicate", d.duplicate, 3), line("rejected", d.rejected, 2)],
      ack: [line("p50", d.ack_p50_ms, 0), line("p99", d.ack_p99_ms, 2)],
      depth: [line("waiting", d.queue_depth, 0)],
      lag: [line("lag", d.queue_lag_seconds, 3)],
      success: [], latency: [], sent: [], throttled: [], delivery: [], "pool-latency": []
    };
    routes.forEach(function (r, i) {
      out.success.push(line(r.route, r.success_rate, i));
      out.latency.push(line(r.route + " p50", r.p50_ms, i));
      out.latency.push(line(r.route + " p95", r.p95_ms, i, true));
    });
    pools.forEach(function (p, i) {
      out.sent.push(line(p.pool, p.sent, i));
      if (p.rate !== undefined && p.rate !== null) {
        out.sent.push(line(p.pool + " rate", d.times.map(function () { return p.rate; }), i, true));
      }
      out.throttled.push(line(p.pool, p.throttled, i));
      out.delivery.push(line(p.pool, p.delivery_rate, i));
      out["pool-latency"].push(line(p.pool + " p50", p.p50_ms, i));
      out["pool-latency"].push(line(p.pool + " p95", p.p95_ms, i, true));
    });
    return out;
  }

  var charts = {};
  // The charts of shares (0..1), drawn on a fixed scale.
  var ratios = { success: true, delivery: true };

  function draw(d) {
    var lines = chartLines(d);
    document.querySelectorAll("#dashboard figure[data-chart]").forEach(function (fig) {
      var name = fig.getAttribute("data-chart");
      var ls = lines[name] || [];
      var n = d.times.length;
      var data = [d.times].concat(ls.map(function (l) { return fit(l.values, n); }));
      var old = charts[name];
      if (old && old.series.length === ls.length + 1) {
        old.setData(data);
        return;
      }
      if (old) { old.destroy(); delete charts[name]; }
      var empty = fig.querySelector(".empty");
      if (ls.length === 0) {
        if (!empty) {
          empty = document.createElement("p");
          empty.className = "empty";
          empty.textContent = "No data in this range.";
          fig.appendChild(empty);
        }
        return;
      }
      if (empty) empty.remove();
      var scales = { x: { time: true } };
      if (ratios[name]) scales.y = { range: [0, 1] };
      var opts = {
        width: Math.max(300, fig.clientWidth - 16),
        height: 200,
        scales: scales,
        // Times in UTC, as every page writes them.
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        series: [{}].concat(ls.map(function (l) { return l.spec; })),
        legend: { live: true }
      };
      charts[name] = new uPlot(opts, data, fig);
    });
  }

  function refresh(section) {
    var url = section.getAttribute("data-json");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.assign("/console/login"); return null; }
        return resp.ok ? resp.json() : null;
      })
      .then(function (d) { if (d) draw(d); })
      .catch(function () { /* keep the charts drawn; the next refresh tries again */ });
  }

  function startDashboard() {
    var section = document.getElementById("dashboard");
    var embedded = document.getElementById("dashboard-data");
    if (!section || !embedded || typeof uPlot === "undefined") return;
    draw(JSON.parse(embedded.textContent));
    window.setInterval(function () { refresh(section); }, 60000);
    var resizing;
    window.addEventListener("resize", function () {
      window.clearTimeout(resizing);
      resizing = window.setTimeout(function () {
        Object.keys(charts).forEach(function (name) {
          var fig = document.querySelector('#dashboard figure[data-chart="' + name + '"]');
          if (fig) charts[name].setSize({ width: Math.max(300, fig.clientWidth - 16), height: 200 });
        });
      }, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startDashboard);
  } else {
    startDashboard();
  }
})();
