// parquetrail console: Event history, event detail, compare, dashboards and Insights over /console/api/.
// Every value from a record is put in the page as text (textContent, createTextNode, attribute
// values set through the DOM), never parsed as markup. No inline script: the page's CSP allows
// scripts from this server only.
"use strict";

(function () {
  const PRESETS = [["30m", "30 minutes"], ["1h", "1 hour"], ["3h", "3 hours"], ["12h", "12 hours"],
    ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"], ["1y", "1 year"],
    ["all", "All time"], ["custom", "Custom"]];
  const COLUMNS = [
    ["EventName", "Event name", true], ["EventTime", "Event time", true], ["Username", "User name", true],
    ["EventSource", "Event source", true], ["ResourceType", "Resource type", true],
    ["ResourceName", "Resource name", true], ["AccessKeyId", "AWS access key", false],
    ["AccountId", "Account ID", false], ["AwsRegion", "AWS region", false], ["ErrorCode", "Error code", false],
    ["SourceIpAddress", "Source IP address", false], ["EventId", "Event ID", false],
    ["ReadOnly", "Read-only", false], ["RequestId", "Request ID", false]];
  const PAGE_SIZES = [10, 25, 50, 100, 200];
  const MAX_COMPARE = 5;

  // --- DOM helpers: text only ---------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = String(v); else node.setAttribute(k, String(v));
    }
    return node;
  }
  const main = () => document.getElementById("main");
  function show(...nodes) {
    const m = main();
    m.replaceChildren(...nodes);
  }
  function errorBox(message) {
    return el("p", { class: "error", role: "alert", id: "error", text: message });
  }

  async function api(path, params) {
    const url = path + (params && params.toString() ? "?" + params.toString() : "");
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      throw new Error((body && (body.error || body.message)) || ("HTTP " + response.status + " from " + path));
    }
    return body;
  }

  // --- The query in the URL -----------------------------------------------------------------
  // attr=Key=Value (repeatable), range=<preset>|custom with start/end, account, region (repeatable),
  // limit, cols (comma-separated column keys).
  function readQuery(search) {
    const q = new URLSearchParams(search);
    const fresh = search === "" || search === "?";
    return {
      attrs: fresh ? ["ReadOnly=false"] : q.getAll("attr").filter((a) => a !== ""),
      range: q.get("range") || (q.get("start") ? "custom" : (fresh ? "1d" : "all")),
      start: q.get("start") || "",
      end: q.get("end") || "",
      accounts: q.getAll("account").filter(Boolean),
      regions: q.getAll("region").filter(Boolean),
      limit: q.get("limit") || "50",
      cols: q.get("cols") ? q.get("cols").split(",") : COLUMNS.filter((c) => c[2]).map((c) => c[0]),
    };
  }
  function queryString(s, withCols) {
    const q = new URLSearchParams();
    for (const a of s.attrs) q.append("attr", a);
    q.set("range", s.range);
    if (s.range === "custom") {
      if (s.start) q.set("start", s.start);
      if (s.end) q.set("end", s.end);
    }
    for (const a of s.accounts) q.append("account", a);
    for (const r of s.regions) q.append("region", r);
    if (s.limit) q.set("limit", s.limit);
    if (withCols) q.set("cols", s.cols.join(","));
    return q;
  }
  // What the API is asked: the preset as a start ("1h" ago) and an open end, or the custom range.
  function apiParams(s) {
    const q = new URLSearchParams();
    for (const a of s.attrs) q.append("attr", a);
    if (s.range === "custom") {
      if (s.start) q.set("start", s.start);
      if (s.end) q.set("end", s.end);
    } else if (s.range !== "all") {
      q.set("start", s.range);
      q.set("end", "now");
    }
    for (const a of s.accounts) q.append("account", a);
    for (const r of s.regions) q.append("region", r);
    if (s.limit) q.set("limit", s.limit);
    return q;
  }
  function eventsLink(attrs, base) {
    const s = Object.assign({}, base || readQuery(""), { attrs: attrs });
    return "/events?" + queryString(s, false).toString();
  }

  // --- Shared controls ----------------------------------------------------------------------
  let metaCache = null;
  async function meta() {
    if (!metaCache) metaCache = await api("/console/api/meta");
    return metaCache;
  }

  function rangeControls(s) {
    const preset = el("select", { id: "range", "aria-label": "Time range" },
      ...PRESETS.map(([v, label]) => el("option", { value: v, selected: v === s.range, text: label })));
    const start = el("input", { id: "start", type: "text", placeholder: "2024-03-01 or RFC 3339", value: s.start, "aria-label": "Start" });
    const end = el("input", { id: "end", type: "text", placeholder: "now", value: s.end, "aria-label": "End" });
    const custom = el("span", { class: "attr-row" }, start, end);
    const sync = () => { custom.hidden = preset.value !== "custom"; };
    preset.addEventListener("change", sync);
    sync();
    return {
      node: el("fieldset", {}, el("legend", { text: "Time range" }), el("span", { class: "attr-row" }, preset, custom)),
      read: (into) => { into.range = preset.value; into.start = start.value.trim(); into.end = end.value.trim(); },
    };
  }

  function picker(id, label, values, chosen) {
    const select = el("select", { id: id, multiple: true, "aria-label": label },
      ...values.map((v) => el("option", { value: v, selected: chosen.includes(v), text: v })));
    return {
      node: el("fieldset", {}, el("legend", { text: label + " (none: all)" }), select),
      read: () => Array.from(select.selectedOptions).map((o) => o.value),
    };
  }

  function attributeControls(keys, attrs) {
    const list = el("div", { id: "attrs" });
    const addRow = (key, value) => {
      const k = el("select", { class: "attr-key", "aria-label": "Attribute" },
        ...keys.map((name) => el("option", { value: name, selected: name === key, text: name })));
      const v = el("input", { class: "attr-value", type: "text", value: value, placeholder: "value (exact)", "aria-label": "Attribute value" });
      const row = el("div", { class: "attr-row" }, k, v,
        el("button", { type: "button", "aria-label": "Remove filter", text: "×", onclick: () => row.remove() }));
      list.appendChild(row);
      return v;
    };
    for (const a of attrs) {
      const i = a.indexOf("=");
      addRow(i < 0 ? a : a.slice(0, i), i < 0 ? "" : a.slice(i + 1));
    }
    return {
      node: el("fieldset", {}, el("legend", { text: "Lookup attributes (all must hold)" }), list,
        el("button", { type: "button", id: "add-attr", text: "Add filter", onclick: () => addRow(keys[1], "").focus() })),
      read: () => Array.from(list.querySelectorAll(".attr-row"))
        .map((r) => [r.querySelector(".attr-key").value, r.querySelector(".attr-value").value])
        .filter(([, v]) => v !== "").map(([k, v]) => k + "=" + v),
    };
  }

  // The form of a view over a range, accounts and Regions (dashboards, Insights): applying it
  // opens `path` with the query in the URL.
  function scopeForm(s, m, path) {
    const range = rangeControls(s);
    const accounts = picker("accounts", "Accounts", m.accounts, s.accounts);
    const regions = picker("regions", "Regions", m.regions, s.regions);
    const form = el("form", { class: "toolbar", id: "filters" }, range.node, accounts.node, regions.node,
      el("button", { type: "submit", class: "primary", id: "apply", text: "Apply" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const next = Object.assign({}, s);
      range.read(next);
      next.accounts = accounts.read();
      next.regions = regions.read();
      navigate(path + "?" + queryString(next, false).toString());
    });
    return form;
  }

  function querySql(query) {
    return el("details", { id: "query" }, el("summary", { text: "The query behind this view" }),
      el("pre", { text: JSON.stringify(Object.assign({}, query, { athena_sql: undefined }), null, 2) }),
      el("pre", { text: query.athena_sql || "" }));
  }

  // --- Event history ------------------------------------------------------------------------
  function cellValue(e, key) {
    switch (key) {
      case "ResourceType": return (e.Resources || []).map((r) => r.ResourceType).filter(Boolean).join(", ");
      case "ResourceName": return (e.Resources || []).map((r) => r.ResourceName).filter(Boolean).join(", ");
      default: return e[key] === null || e[key] === undefined ? "" : String(e[key]);
    }
  }

  async function eventHistory() {
    const s = readQuery(location.search);
    let m;
    try { m = await meta(); } catch (e) { show(errorBox(e.message)); return; }
    const attrs = attributeControls(m.keys, s.attrs);
    const range = rangeControls(s);
    const accounts = picker("accounts", "Accounts", m.accounts, s.accounts);
    const regions = picker("regions", "Regions", m.regions, s.regions);
    const size = el("select", { id: "limit", "aria-label": "Page size" },
      ...PAGE_SIZES.map((n) => el("option", { value: n, selected: String(n) === s.limit, text: String(n) })));
    const form = el("form", { class: "toolbar", id: "filters" }, attrs.node, range.node, accounts.node, regions.node,
      el("fieldset", {}, el("legend", { text: "Page size" }), size),
      el("button", { type: "submit", class: "primary", id: "apply", text: "Apply" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const next = Object.assign({}, s);
      next.attrs = attrs.read();
      range.read(next);
      next.accounts = accounts.read();
      next.regions = regions.read();
      next.limit = size.value;
      navigate("/events?" + queryString(next, true).toString());
    });

    const chooser = el("div", { class: "columns", id: "columns", role: "group", "aria-label": "Columns" },
      ...COLUMNS.map(([key, label]) => {
        const box = el("input", { type: "checkbox", value: key, checked: s.cols.includes(key), id: "col-" + key });
        box.addEventListener("change", () => {
          s.cols = COLUMNS.map((c) => c[0]).filter((k) => document.getElementById("col-" + k).checked);
          history.replaceState(null, "", "/events?" + queryString(s, true).toString());
          render();
        });
        return el("label", {}, box, " " + label);
      }));

    const params = apiParams(s);
    // A download is the whole result (up to the server's 1000 by default), not the page.
    const whole = new URLSearchParams(params);
    whole.delete("limit");
    const downloads = el("span", { class: "actions" },
      el("a", { id: "download-csv", href: "/console/api/events.csv?" + whole.toString(), download: "events.csv", text: "Download CSV" }),
      el("a", { id: "download-json", href: "/console/api/events.json?" + whole.toString(), download: "events.json", text: "Download JSON" }),
      el("a", { href: "/console/api/events?" + params.toString(), text: "JSON of this page" }));
    const compareButton = el("button", { type: "button", id: "compare", disabled: true, text: "Compare selected" });
    const status = el("span", { class: "muted", id: "status", role: "status" });
    const table = el("table", { id: "events" });
    const more = el("button", { type: "button", id: "load-more", hidden: true, text: "Load more" });
    const body = el("div", {});
    show(el("h1", { text: "Event history" }), form,
      el("details", {}, el("summary", { text: "Columns" }), chooser),
      el("div", { class: "actions" }, downloads, compareButton, status), body, table, more);

    const rows = [];
    const selected = new Set();
    let next = null;
    let query = null;
    function render() {
      const cols = COLUMNS.filter((c) => s.cols.includes(c[0]));
      const head = el("tr", {}, el("th", { scope: "col", class: "pick-col", text: "Compare" }), ...cols.map((c) => el("th", { scope: "col", text: c[1] })));
      const trs = rows.map((e) => {
        const box = el("input", { type: "checkbox", class: "pick", "aria-label": "Select for compare", checked: selected.has(e.EventId) });
        box.addEventListener("change", () => {
          if (box.checked && selected.size >= MAX_COMPARE) { box.checked = false; status.textContent = "Compare takes up to five events."; return; }
          if (box.checked) selected.add(e.EventId); else selected.delete(e.EventId);
          compareButton.disabled = selected.size < 2;
        });
        return el("tr", { "data-event-id": e.EventId }, el("td", {}, box), ...cols.map(([key]) => {
          const text = cellValue(e, key);
          if (key === "EventName" && e.EventId) {
            return el("td", {}, el("a", { href: "/event?id=" + encodeURIComponent(e.EventId), class: "event-link", text: text }));
          }
          return el("td", { class: key === "EventTime" ? "time" : null, text: text });
        }));
      });
      table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...trs));
      status.textContent = rows.length + " event(s)" + (next ? ", more available" : "");
      more.hidden = !next;
    }
    compareButton.addEventListener("click", () => {
      const q = new URLSearchParams();
      for (const id of selected) q.append("id", id);
      navigate("/compare?" + q.toString());
    });
    async function load() {
      const p = new URLSearchParams(params);
      if (next && query) {
        // The token is bound to the range the first page resolved (a preset moves with the clock).
        p.set("start", query.start);
        p.set("end", query.end);
        p.set("next", next);
      }
      more.disabled = true;
      try {
        const page = await api("/console/api/events", p);
        if (!query) {
          query = page.query;
          body.replaceChildren(querySql(page.query));
          const fixed = new URLSearchParams(whole);
          fixed.set("start", query.start);
          fixed.set("end", query.end);
          downloads.querySelector("#download-csv").href = "/console/api/events.csv?" + fixed.toString();
          downloads.querySelector("#download-json").href = "/console/api/events.json?" + fixed.toString();
        }
        rows.push(...page.events);
        next = page.next || null;
        render();
      } catch (e) {
        body.replaceChildren(errorBox(e.message));
      } finally {
        more.disabled = false;
      }
    }
    more.addEventListener("click", load);
    render();
    await load();
  }

  // --- Event detail -------------------------------------------------------------------------
  function relatedLink(label, attr, time) {
    const t = new Date(time).getTime();
    const day = 24 * 3600 * 1000;
    const s = { attrs: [attr], range: "custom", start: new Date(t - day).toISOString(), end: new Date(t + day).toISOString(),
      accounts: [], regions: [], limit: "50", cols: [] };
    return el("li", {}, el("a", { href: "/events?" + queryString(s, false).toString(), class: "related", text: label }));
  }

  async function eventDetail() {
    const id = new URLSearchParams(location.search).get("id") || "";
    let answer;
    try {
      answer = await api("/console/api/event", new URLSearchParams({ id: id }));
    } catch (e) {
      show(el("h1", { text: "Event" }), errorBox(e.message));
      return;
    }
    const nodes = [el("h1", { text: "Event " }, el("span", { id: "event-id", text: id }))];
    for (const { summary: e, record } of answer.events) {
      const facts = el("table", { id: "summary" }, el("tbody", {},
        ...COLUMNS.filter(([k]) => k !== "ResourceType" && k !== "ResourceName").map(([k, label]) =>
          el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: cellValue(e, k) })))));
      const resources = el("table", { id: "resources" },
        el("thead", {}, el("tr", {}, el("th", { text: "Resource type" }), el("th", { text: "Resource name" }))),
        el("tbody", {}, ...(e.Resources || []).map((r) =>
          el("tr", {}, el("td", { text: r.ResourceType || "" }), el("td", { text: r.ResourceName || "" })))));
      const related = el("ul", { id: "related" });
      if (e.AccessKeyId) related.appendChild(relatedLink("Same access key (" + e.AccessKeyId + ")", "AccessKeyId=" + e.AccessKeyId, e.EventTime));
      if (e.Username) related.appendChild(relatedLink("Same user (" + e.Username + ")", "Username=" + e.Username, e.EventTime));
      if (e.RequestId) related.appendChild(relatedLink("Same request ID (" + e.RequestId + ")", "RequestId=" + e.RequestId, e.EventTime));
      const json = JSON.stringify(record, null, 2);
      const pre = el("pre", { id: "record", tabindex: "0", text: json });
      const copy = el("button", { type: "button", id: "copy", text: "Copy JSON" });
      copy.addEventListener("click", async () => {
        try { await navigator.clipboard.writeText(json); copy.textContent = "Copied"; } catch (err) {
          const range = document.createRange(); range.selectNodeContents(pre);
          const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
          copy.textContent = "Selected: press Ctrl+C";
        }
      });
      nodes.push(el("section", {}, el("h2", { text: "Summary" }), facts),
        el("section", {}, el("h2", { text: "Resources referenced" }), resources),
        el("section", {}, el("h2", { text: "Related events (a day either side)" }), related),
        el("section", {}, el("h2", { text: "Event record" }), copy, pre));
    }
    nodes.push(querySql(answer.query));
    show(...nodes);
  }

  // --- Compare ------------------------------------------------------------------------------
  function flatten(value, prefix, out) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) flatten(v, prefix ? prefix + "." + k : k, out);
    } else {
      out[prefix] = value === undefined ? "" : JSON.stringify(value);
    }
    return out;
  }

  async function compare() {
    const ids = new URLSearchParams(location.search).getAll("id").slice(0, MAX_COMPARE);
    if (ids.length === 0) {
      show(el("h1", { text: "Compare events" }),
        el("p", { text: "Select two to five events in Event history, then choose Compare selected." }));
      return;
    }
    let answers;
    try {
      answers = await Promise.all(ids.map((id) => api("/console/api/event", new URLSearchParams({ id: id }))));
    } catch (e) {
      show(el("h1", { text: "Compare events" }), errorBox(e.message));
      return;
    }
    const flats = answers.map((a) => flatten(a.events[0].record, "", {}));
    const keys = Array.from(new Set(flats.flatMap((f) => Object.keys(f)))).sort();
    const head = el("tr", {}, el("th", { text: "Field" }), ...ids.map((id) =>
      el("th", {}, el("a", { href: "/event?id=" + encodeURIComponent(id), text: id }))));
    const body = keys.map((k) => {
      const values = flats.map((f) => (k in f ? f[k] : ""));
      const differs = values.some((v) => v !== values[0]);
      return el("tr", { class: differs ? "differs" : null }, el("th", { scope: "row", text: k }),
        ...values.map((v) => el("td", { class: differs ? "differs" : null, text: v })));
    });
    show(el("h1", { text: "Compare events" }), el("p", { class: "muted", text: "Fields that differ are highlighted." }),
      el("table", { id: "compare-table", class: "diff" }, el("thead", {}, head), el("tbody", {}, ...body)));
  }

  // --- Dashboards ---------------------------------------------------------------------------
  function lineChart(points, bucketSeconds, linkOf) {
    const width = 900, height = 220, pad = 36;
    const max = Math.max(1, ...points.map((p) => p.count));
    const x = (i) => pad + (points.length <= 1 ? 0 : (i * (width - 2 * pad)) / (points.length - 1));
    const y = (n) => height - pad - (n * (height - 2 * pad)) / max;
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "chart", id: "events-over-time", role: "img",
      "aria-label": "Events over time, " + points.length + " buckets of " + bucketSeconds + " s" });
    axes(chart, width, height, pad, max);
    plot(chart, points, x, y, linkOf, 3);
    labelEnds(chart, points, width, height, pad);
    return chart;
  }

  // The axes of a chart, its top labelled with `max`.
  function axes(chart, width, height, pad, max) {
    chart.appendChild(svg("line", { class: "axis", x1: pad, y1: height - pad, x2: width - pad, y2: height - pad }));
    chart.appendChild(svg("line", { class: "axis", x1: pad, y1: pad, x2: pad, y2: height - pad }));
    chart.appendChild(svg("text", { x: 2, y: pad, text: String(max) }));
    chart.appendChild(svg("text", { x: 2, y: height - pad, text: "0" }));
  }

  // A line through the points, each a dot (with its start and count) linking to its events.
  function plot(chart, points, x, y, linkOf, r) {
    chart.appendChild(svg("polyline", { class: "line", points: points.map((p, i) => x(i) + "," + y(p.count)).join(" ") }));
    points.forEach((p, i) => {
      const a = svg("a", { href: linkOf(p) });
      const dot = svg("circle", { class: "point", cx: x(i), cy: y(p.count), r: r, "data-count": p.count, "data-start": p.start });
      dot.appendChild(svg("title", { text: p.start + ": " + p.count }));
      a.appendChild(dot);
      chart.appendChild(a);
    });
  }

  function labelEnds(chart, points, width, height, pad) {
    if (points.length) {
      chart.appendChild(svg("text", { x: pad, y: height - 8, text: points[0].start }));
      chart.appendChild(svg("text", { x: width - pad, y: height - 8, "text-anchor": "end", text: points[points.length - 1].start }));
    }
  }

  function barWidget(w, base) {
    const max = Math.max(1, ...w.bars.map((b) => b.count));
    const rows = w.bars.map((b) => {
      const bar = svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true" });
      bar.appendChild(svg("rect", { class: "bar", x: 0, y: 0, height: 10, width: Math.max(0.5, (100 * b.count) / max) }));
      const label = b.attrs.length
        ? el("a", { href: eventsLink(w.attrs.concat(b.attrs), base), text: b.label || "(none)" })
        : el("span", { text: b.label || "(none)" });
      return el("div", { class: "bar-row" }, label, bar, el("span", { text: String(b.count) }));
    });
    return el("section", { class: "card widget", id: "widget-" + w.id },
      el("h2", { text: w.title + " (" + w.total + ")" }),
      el("p", { class: "muted" }, "Counts " + w.counts + ". ",
        el("a", { href: eventsLink(w.attrs.concat(base.attrs), base), text: "Event history" })),
      rows.length ? el("div", {}, ...rows) : el("p", { class: "muted", text: "No events." }));
  }

  async function dashboard() {
    const s = readQuery(location.search);
    if (location.search === "") s.attrs = [];
    let m;
    try { m = await meta(); } catch (e) { show(errorBox(e.message)); return; }
    const form = scopeForm(s, m, "/dashboard");
    const status = el("p", { class: "muted", id: "status", role: "status", text: "Reading the range…" });
    show(el("h1", { text: "Dashboards" }), form, status);
    const params = apiParams(s);
    params.delete("limit");
    let d;
    try { d = await api("/console/api/dashboard", params); } catch (e) { status.replaceWith(errorBox(e.message)); return; }
    const base = Object.assign({}, s, { range: "custom", start: d.query.start, end: d.query.end });
    const series = d.events_over_time;
    const width = series.bucket_seconds * 1000;
    const linkOf = (p) => {
      const t = new Date(p.start).getTime();
      return eventsLink(base.attrs, Object.assign({}, base, { start: p.start, end: new Date(t + width - 1).toISOString() }));
    };
    status.textContent = d.events + " event(s) from " + d.query.start + " to " + d.query.end +
      (d.truncated ? " (stopped early: the range holds more events than a dashboard reads)" : "");
    show(el("h1", { text: "Dashboards" }), form, status,
      el("div", { class: "grid" },
        el("section", { class: "card wide", id: "widget-events_over_time" }, el("h2", { text: "Events over time" }),
          el("p", { class: "muted" }, "Counts " + series.counts + " (" + series.bucket_seconds + " s each). ",
            el("a", { href: eventsLink(base.attrs, base), text: "Event history" })),
          lineChart(series.points, series.bucket_seconds, linkOf)),
        ...d.widgets.map((w) => barWidget(w, base))),
      querySql(d.query));
  }

  // --- Insights -----------------------------------------------------------------------------
  // The API's rate per period (a point each) against the Insight's baseline average (a dashed
  // line), the episode shaded. Every label is text.
  // An average as people read it: at most two decimals (the exact value stays in data-average).
  function rounded(v) {
    return v === null || v === undefined ? "" : String(Math.round(Number(v) * 100) / 100);
  }

  function insightChart(id, points, periodSeconds, baseline, episode, linkOf) {
    const width = 900, height = 200, pad = 40;
    const max = Math.max(1, baseline || 0, ...points.map((p) => p.count));
    const times = points.map((p) => new Date(p.start).getTime());
    const t0 = times.length ? times[0] : 0;
    const t1 = times.length ? times[times.length - 1] + periodSeconds * 1000 : 1;
    const x = (t) => pad + ((t - t0) * (width - 2 * pad)) / Math.max(1, t1 - t0);
    const y = (n) => height - pad - (n * (height - 2 * pad)) / max;
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "chart insight-chart", id: id, role: "img",
      "aria-label": "Events per " + periodSeconds + " s, " + points.length + " points, against a baseline of " + rounded(baseline) });
    if (episode.start) {
      const a = x(new Date(episode.start).getTime());
      const b = episode.end ? x(new Date(episode.end).getTime()) : a + 2;
      chart.appendChild(svg("rect", { class: "episode", x: a, y: pad, width: Math.max(2, b - a), height: height - 2 * pad }));
    }
    axes(chart, width, height, pad, max);
    if (baseline !== null && baseline !== undefined) {
      chart.appendChild(svg("line", { class: "baseline", x1: pad, x2: width - pad, y1: y(baseline), y2: y(baseline), "data-average": baseline }));
      chart.appendChild(svg("text", { class: "baseline-label", x: width - pad, y: y(baseline) - 4, "text-anchor": "end", text: "baseline " + rounded(baseline) }));
    }
    const mid = (i) => x(times[i] + (periodSeconds * 1000) / 2);
    plot(chart, points, mid, y, linkOf, 2);
    labelEnds(chart, points, width, height, pad);
    return chart;
  }

  function attributionTable(a) {
    const rows = [];
    const n = Math.max((a.insight || []).length, (a.baseline || []).length);
    for (let i = 0; i < n; i++) {
      const cell = (side) => {
        const v = (a[side] || [])[i];
        return v ? [el("td", { text: String(v.value) }), el("td", { class: "num", text: rounded(v.average) })] : [el("td", {}), el("td", {})];
      };
      rows.push(el("tr", {}, ...cell("insight"), ...cell("baseline")));
    }
    const titles = { userIdentityArn: "Top identities", userAgent: "Top user agents", errorCode: "Top error codes" };
    return el("section", { class: "attribution", "data-attribute": a.attribute },
      el("h3", { text: titles[a.attribute] || String(a.attribute) }),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "During the Insight" }), el("th", { class: "num", text: "avg/min" }),
          el("th", { text: "Baseline" }), el("th", { class: "num", text: "avg/min" }))),
        el("tbody", {}, ...rows)));
  }

  function insightCard(insight, index, base) {
    const st = insight.statistics || {};
    const avg = (side) => (st[side] && st[side].average !== undefined ? rounded(st[side].average) : null);
    const title = [insight.event_source, insight.event_name].filter(Boolean).join(" · ");
    const facts = [
      ["Insight type", insight.insight_type], ["Error code", insight.error_code], ["Account", insight.account],
      ["Region", insight.region], ["Start", insight.start && insight.start.time],
      ["End", insight.end ? insight.end.time : "(not ended)"],
      ["Duration (min)", st.insightDuration], ["Average per minute", avg("insight")],
      ["Baseline average", avg("baseline")], ["Baseline (min)", st.baselineDuration],
    ].filter(([, v]) => v !== null && v !== undefined);
    const links = el("span", { class: "actions" },
      insight.start && insight.start.event_id ? el("a", { class: "start-event", href: "/event?id=" + encodeURIComponent(insight.start.event_id), text: "Start event" }) : null,
      insight.end && insight.end.event_id ? el("a", { class: "end-event", href: "/event?id=" + encodeURIComponent(insight.end.event_id), text: "End event" }) : null);
    const chartBox = el("div", { class: "chart-box" }, el("p", { class: "muted", text: "Reading the rate…" }));
    const card = el("section", { class: "card insight", id: "insight-" + index, "data-shared-event-id": insight.shared_event_id,
      "data-insight-type": insight.insight_type || "", "data-event-source": insight.event_source || "",
      "data-event-name": insight.event_name || "", "data-start": (insight.start && insight.start.time) || "",
      "data-error-code": insight.error_code,
      "data-computed": String(insight.computed) },
      el("h2", {}, el("span", { class: "insight-title", text: title }), " ",
        el("span", { class: "badge " + (insight.computed ? "computed" : "delivered"),
          text: insight.computed ? "computed by parquetrail" : "delivered by CloudTrail" })),
      el("table", { class: "facts" },
        el("thead", {}, el("tr", {}, ...facts.map(([k]) => el("th", { scope: "col", text: k })))),
        el("tbody", {}, el("tr", {}, ...facts.map(([, v]) => el("td", { text: String(v) }))))),
      links, chartBox,
      el("div", { class: "attributions" }, ...(Array.isArray(insight.attributions) ? insight.attributions : []).map(attributionTable)));
    return { card: card, load: async () => {
      const q = new URLSearchParams(insight.series || {});
      if (!q.get("start")) { chartBox.replaceChildren(el("p", { class: "muted", text: "No time to chart." })); return; }
      let series;
      try { series = await api("/console/api/insights/series", q); } catch (e) { chartBox.replaceChildren(errorBox(e.message)); return; }
      const width = series.period_seconds * 1000;
      const attrs = ["EventSource=" + insight.event_source, "EventName=" + insight.event_name];
      if (insight.insight_type === "ApiCallRateInsight") attrs.push("ReadOnly=false");
      if (insight.error_code) attrs.push("ErrorCode=" + insight.error_code);
      const scope = Object.assign({}, base, { accounts: [insight.account], regions: [insight.region], range: "custom" });
      const linkOf = (p) => eventsLink(attrs, Object.assign({}, scope,
        { start: p.start, end: new Date(new Date(p.start).getTime() + width - 1).toISOString() }));
      chartBox.replaceChildren(
        el("p", { class: "muted" }, "Events per " + (series.period_seconds === 60 ? "minute" : series.period_seconds + " s") +
          " (" + series.events + " read" + (series.truncated ? ", stopped early" : "") + "), the Insight shaded, the baseline dashed. ",
          el("a", { href: eventsLink(attrs, Object.assign({}, scope, { start: q.get("start"), end: q.get("end") })), text: "Event history" })),
        insightChart("chart-" + index, series.points, series.period_seconds, avg("baseline"),
          { start: insight.start && insight.start.time, end: insight.end && insight.end.time }, linkOf));
    } };
  }

  async function insights() {
    const s = readQuery(location.search);
    if (location.search === "") { s.attrs = []; s.range = "90d"; }
    let m;
    try { m = await meta(); } catch (e) { show(errorBox(e.message)); return; }
    const form = scopeForm(s, m, "/insights");
    const status = el("p", { class: "muted", id: "status", role: "status", text: "Reading the Insights…" });
    show(el("h1", { text: "Insights" }), form, status);
    const params = apiParams(s);
    params.delete("limit");
    let answer;
    try { answer = await api("/console/api/insights", params); } catch (e) { status.replaceWith(errorBox(e.message)); return; }
    const list = answer.insights;
    const computed = list.filter((i) => i.computed).length;
    status.textContent = list.length + " Insight(s) from " + answer.query.start + " to " + answer.query.end + ": " +
      computed + " computed by parquetrail insights, " + (list.length - computed) + " delivered by CloudTrail" +
      (answer.truncated ? " (stopped early: the range holds more Insights than a page reads)" : "");
    const base = Object.assign({}, s, { attrs: [] });
    const cards = list.map((insight, i) => insightCard(insight, i, base));
    show(el("h1", { text: "Insights" }), form, status,
      el("div", { id: "insights" }, ...cards.map((c) => c.card)), querySql(answer.query));
    // One chart at a time: each reads its window's events.
    for (const c of cards) await c.load();
  }

  // --- Routing ------------------------------------------------------------------------------
  function navigate(url) {
    history.pushState(null, "", url);
    route();
  }
  async function route() {
    delete document.body.dataset.ready;
    const view = location.pathname.replace(/^\/+/, "") || "events";
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const views = { events: eventHistory, event: eventDetail, compare: compare, dashboard: dashboard, insights: insights };
    document.title = "parquetrail: " + view;
    await (views[view] || eventHistory)();
    document.body.dataset.ready = view;
  }
  window.addEventListener("popstate", route);
  document.addEventListener("DOMContentLoaded", route);
})();
