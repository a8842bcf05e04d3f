// SCITI web app: charts (ECharts), API actions with the session's CSRF token, loading and error
// states. Everything is served by SCITI itself; nothing is fetched from elsewhere.
(function () {
  "use strict";
  const body = () => document.body;
  const csrf = () => body().dataset.csrf || "";

  function notice(text, kind) {
    const box = document.getElementById("notices");
    if (!box) return;
    const p = document.createElement("p");
    p.className = "notice " + (kind || "");
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = text;
    box.replaceChildren(p);
  }

  // ---- charts -------------------------------------------------------------------------------
  const LANE_COLOURS = { red: "#c0392b", yellow: "#d4a017", blue: "#2e6fd8", green: "#2e8b57" };

  function option(spec) {
    const base = { tooltip: { trigger: spec.kind === "pie" ? "item" : "axis" }, grid: { left: 48, right: 16, top: 32, bottom: 40, containLabel: true } };
    if (spec.kind === "pie") {
      const s = spec.series[0];
      return Object.assign(base, { series: [{ type: "pie", name: s.name, radius: ["35%", "70%"],
        // keys: the slices' codes (a lane's colour) when x holds their names in the reader's language
        data: spec.x.map((name, i) => { const colour = LANE_COLOURS[(spec.keys || spec.x)[i]];
          return { name, value: s.data[i], itemStyle: colour ? { color: colour } : undefined }; }) }] });
    }
    if (spec.kind === "forecast") {
      const n = spec.observed.length, pad = (arr) => Array(n).fill(null).concat(arr);
      const [obs, mean, band] = spec.names;
      return Object.assign(base, {
        legend: { top: 0 },
        xAxis: { type: "category", data: spec.x }, yAxis: { type: "value", min: 0 },
        series: [
          { name: obs, type: "line", data: spec.observed, showSymbol: false },
          { name: band, type: "line", data: pad(spec.low), stack: "band", lineStyle: { opacity: 0 }, showSymbol: false },
          { name: band, type: "line", data: pad(spec.high.map((h, i) => h - spec.low[i])), stack: "band", lineStyle: { opacity: 0 }, showSymbol: false, areaStyle: { opacity: 0.25 } },
          { name: mean, type: "line", data: pad(spec.mean), lineStyle: { type: "dashed" }, showSymbol: false },
        ],
      });
    }
    if (spec.kind === "xy") {  // numeric x and y: evaluation curves ([x, y] pairs), dashed references
      return Object.assign(base, {
        animation: false,  // a curve is read as a whole: draw it at once
        title: spec.title ? { text: spec.title, left: "center", textStyle: { fontSize: 13 } } : undefined,
        legend: { bottom: 0 }, grid: { left: 56, right: 16, top: spec.title ? 36 : 16, bottom: 64, containLabel: true },
        xAxis: { type: "value", name: spec.xName, nameLocation: "middle", nameGap: 26, min: spec.xMin, max: spec.xMax },
        yAxis: { type: "value", name: spec.yName, nameLocation: "middle", nameGap: 40, min: 0, max: spec.yMax },
        series: spec.series.map((s) => ({ name: s.name, type: "line", data: s.data, showSymbol: false,
          lineStyle: s.dashed ? { type: "dashed", width: 1 } : undefined })),
      });
    }
    const horizontal = spec.kind === "hbar";
    const cat = { type: "category", data: spec.x }, val = { type: "value" };
    return Object.assign(base, {
      legend: spec.series.length > 1 ? { top: 0, type: "scroll" } : undefined,
      xAxis: horizontal ? val : cat, yAxis: horizontal ? Object.assign(cat, { inverse: true }) : val,
      series: spec.series.map((s) => ({ name: s.name, type: spec.kind === "line" ? "line" : "bar", data: s.data, stack: spec.stack ? "all" : undefined })),
    });
  }

  function draw(el, spec) {
    if (!window.echarts) { el.textContent = ""; return; }
    const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
    chart.setOption(option(spec), true);
  }

  function drawAll(root) {
    root.querySelectorAll("[data-chart]").forEach((el) => draw(el, JSON.parse(el.dataset.chart)));
    root.querySelectorAll("[data-chart-for]").forEach(bindChartControls);
    root.querySelectorAll("input[data-today]").forEach((el) => { if (!el.value) el.value = new Date().toISOString().slice(0, 10); });
  }
  window.addEventListener("resize", () => document.querySelectorAll("[_echarts_instance_]").forEach((el) => window.echarts.getInstanceByDom(el)?.resize()));

  // A chart from any SQL result: the person picks the kind and the columns.
  function bindChartControls(box) {
    const target = document.getElementById(box.dataset.chartFor);
    const rows = JSON.parse(target.dataset.rows || "[]");
    const pick = (role) => box.querySelector(`[data-role=${role}]`);
    const update = () => {
      const kind = pick("kind").value, x = +pick("x").value, y = +pick("y").value;
      if (!kind || Number.isNaN(y) || pick("y").value === "") { target.hidden = true; return; }
      target.hidden = false;
      const name = pick("y").selectedOptions[0]?.textContent || "";
      draw(target, { kind, x: rows.map((r) => String(r[x])), series: [{ name, data: rows.map((r) => r[y]) }] });
    };
    box.querySelectorAll("select").forEach((s) => s.addEventListener("change", update));
  }

  // ---- API actions --------------------------------------------------------------------------
  let words = null;  // error code -> message in the page's language (none on English pages)
  function codeWords() {
    if (words === null) {
      const el = document.getElementById("code-words");
      words = el ? JSON.parse(el.textContent) : {};
    }
    return words;
  }

  function formJson(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.type === "checkbox") out[el.name] = el.checked;
      else if (el.type === "number") { if (el.value !== "") out[el.name] = Number(el.value); }
      else if (el.value !== "" || el.required) out[el.name] = el.value;
    }
    return out;
  }

  async function callApi(form) {
    const out = form.querySelector("[data-api-result]");
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const button = form.querySelector("button[type=submit], button:not([type])");
    if (button) button.disabled = true;
    if (out) { out.className = "loading"; out.textContent = "…"; }
    try {
      const res = await fetch(form.dataset.api, {
        method: form.dataset.method || "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), Accept: "application/json" },
        body: JSON.stringify(formJson(form)),
      });
      const data = res.status === 204 ? {} : await res.json().catch(() => ({}));
      if (!res.ok) {
        const err = data.error || {};
        const fields = (err.details && err.details.fields || []).map((f) => `${f.field}: ${f.problem}`).join("; ");
        // In another language than English: what the error's code means, then the server's own words.
        const said = err.code && codeWords()[err.code];
        const text = (said ? [said, err.message, fields] : [err.message || body().dataset.msgFailed, fields, err.remedy])
          .filter(Boolean).join(" — ");
        if (out) { out.className = "notice error"; out.textContent = text; } else notice(text, "error");
        return;
      }
      after(form, data, out);
    } catch (e) {
      const text = body().dataset.msgOffline;
      if (out) { out.className = "notice error"; out.textContent = text; } else notice(text, "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  // A rule dry-run's note in the page's language from its code and values, with the page's words
  // (#dry-note-words, as sciti/web/dryrun_words.py says them on the server); null on an English page
  // or for a code these words do not say.
  function noteSaid(said) {
    const el = document.getElementById("dry-note-words");
    if (!el || !said || !said.params) return null;
    const w = JSON.parse(el.textContent), p = said.params;
    if (!(w.codes || []).includes(said.code)) return null;
    const word = (k) => { if (typeof w[k] !== "string") throw new Error(`no words for ${k}`); return w[k]; };
    const kept = (v) => { const s = document.createElement("span"); s.setAttribute("translate", "no"); s.textContent = String(v); return s; };
    const join = (parts, sep) => { const f = document.createDocumentFragment(); parts.forEach((x, i) => { if (i) f.append(word(sep)); f.append(x); }); return f; };
    const count = (n) => Number(n).toLocaleString("en-US");  // thousands separators, as the server's {:,}
    const fill = (text, values) => {  // {name} -> its value: words, or nodes (data, marked)
      const f = document.createDocumentFragment();
      for (const part of text.split(/(\{\w+\})/)) {
        const hole = /^\{(\w+)\}$/.exec(part);
        if (!hole) { if (part) f.append(part); continue; }
        if (!(hole[1] in values)) throw new Error(`no value for ${hole[1]}`);
        const v = values[hole[1]];
        f.append(v instanceof Node ? v.cloneNode(true) : String(v));
      }
      return f;
    };
    try {
      const v = {};
      if ("office" in p) v.office = kept(p.office);
      if ("offices" in p) v.offices = join(p.offices.map(kept), "sep_list");
      if ("records" in p) { v.records = count(p.records); v.unit = word("unit"); }
      if ("parts" in p) {
        v.parts = join(p.parts.map((x) => fill(word("scope_part"),
          { scope: word(`scope.${x.key}`), values: join(x.values.map(kept), "sep_list"), kept: count(x.kept) })), "sep_parts");
      }
      if ("valid_from" in p) {
        const period = [];
        if (p.valid_from) period.push(fill(word("period_from"), { moment: kept(p.valid_from) }));
        if (p.valid_to) period.push(fill(word("period_until"), { moment: kept(p.valid_to) }));
        v.period = join(period, "sep_period");
        v.window_from = kept(p.window_from); v.window_to = kept(p.window_to);
      }
      return fill(word(said.code), v);
    } catch (e) {
      return null;  // values these words do not fit: the engine's English
    }
  }

  function after(form, data, out) {
    const how = form.dataset.after;
    if (how === "reload") {
      // A confirmation to show once the page has reloaded (e.g. "Inspection result recorded").
      if (form.dataset.doneMsg) sessionStorage.setItem("sciti-done", form.dataset.doneMsg);
      window.location.reload(); return;
    }
    if (how === "goto-rule" && data.rule_id) { window.location.assign(`${body().dataset.root}/rules/${encodeURIComponent(data.rule_id)}`); return; }
    if (how === "verify") {
      out.className = data.ok ? "notice ok" : "notice error";
      out.textContent = (data.ok ? form.dataset.msgOk : form.dataset.msgBroken).replace("{entries}", data.entries).replace("{seq}", data.first_bad_seq ?? "");
      return;
    }
    if (how === "dryrun") {
      const box = document.getElementById("dryrun-result"), m = box.dataset;
      out.className = ""; out.textContent = "";
      const rate = data.hit_rate == null ? "—" : (100 * data.hit_rate).toFixed(1) + " %";
      box.innerHTML = "";
      const p = document.createElement("p");
      p.id = "dryrun-summary";
      p.textContent = `${m.msgRecords}: ${data.records} · ${m.msgHits}: ${data.hits} · ${m.msgFrauds}: ${data.known_frauds} · ${m.msgRate}: ${rate}`;
      if (data.scope_kept && Object.keys(data.scope_kept).length) p.textContent += ` · ${m.msgInScope}: ${data.in_scope}`;
      const chart = document.createElement("div");
      chart.className = "chart small";
      box.append(p);
      if (data.notes && data.notes.length) {  // why the figures may not be what one expects
        const notes = document.createElement("div"), head = document.createElement("strong"), list = document.createElement("ul");
        notes.className = "notice"; notes.id = "dryrun-notes"; head.textContent = m.msgNotes;
        // said from their codes in the page's language, else the engine's English, marked (docs/web.md, Language)
        const codes = data.note_codes && data.note_codes.length === data.notes.length ? data.note_codes : [];
        data.notes.forEach((n, i) => {
          const li = document.createElement("li"), said = noteSaid(codes[i]);
          if (said) li.append(said); else { li.textContent = n; li.dataset.untranslated = "engine"; }
          list.append(li);
        });
        notes.append(head, list); box.append(notes);
      }
      box.append(chart);
      const days = data.hits_per_day || [];
      draw(chart, { kind: "bar", x: days.map((d) => String(d.day)), series: [{ name: m.msgHits, data: days.map((d) => d.hits) }] });
      return;
    }
    if (out) { out.className = "notice ok"; out.textContent = body().dataset.msgDone; }
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.dataset && form.dataset.api) { ev.preventDefault(); callApi(form); return; }
    if (form.hasAttribute && form.hasAttribute("data-copy-sql")) {  // export / save take the editor's text
      const editor = document.getElementById("sql");
      form.querySelector("[name=sql]").value = editor ? editor.value : "";
      const purpose = document.querySelector("#sql-form [name=purpose]"), mine = form.querySelector("[name=purpose]");
      if (purpose && mine) mine.value = purpose.value;
      const unmask = document.querySelector("#sql-form [name=unmask]"), asked = form.querySelector("[name=unmask]");
      if (asked) asked.value = unmask && unmask.checked ? "true" : "false";  // export as the run shows
    }
  }, true);

  document.addEventListener("click", (ev) => {
    const load = ev.target.closest && ev.target.closest("[data-load-sql]");
    if (load) { const editor = document.getElementById("sql"); editor.value = load.dataset.loadSql; editor.focus(); }
  });

  // htmx: copy the editor into hx-post forms that carry it, report failures, draw new charts.
  document.addEventListener("htmx:configRequest", (ev) => {
    const form = ev.detail.elt;
    if (form.hasAttribute && form.hasAttribute("data-copy-sql")) ev.detail.parameters.sql = document.getElementById("sql").value;
  });
  document.addEventListener("htmx:responseError", (ev) => notice(body().dataset.msgFailed + ` (${ev.detail.xhr.status})`, "error"));
  document.addEventListener("htmx:sendError", () => notice(body().dataset.msgOffline, "error"));
  document.addEventListener("htmx:afterSettle", (ev) => drawAll(ev.detail.elt));
  document.addEventListener("DOMContentLoaded", () => {
    drawAll(document);
    const done = sessionStorage.getItem("sciti-done");
    if (done) { sessionStorage.removeItem("sciti-done"); notice(done, "ok"); }
  });
})();
