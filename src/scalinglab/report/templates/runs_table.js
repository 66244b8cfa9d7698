// The runs table shared by the dashboard and the report (scalinglab.report.runs_table builds
// its data). Plain DOM, no dependencies, works from file:// (the report) and from the server.
//
//   const t = SLRunsTable(container, {selectable, picked, onOpen, onPick, onState, state});
//   t.setData(payload);   // {columns: [{key, label, kind, unit, hidden}], rows: [{...}]}
//
// Sorting: a click on a header (or Enter on it) cycles ascending -> descending; the header says
// so with WAI-ARIA aria-sort. Searching: <input type="search"> matches any shown text. Range
// filters take human numbers (1e8, 125M, 1.4T). Colour and group by any column or tag. The CSV
// button downloads what is shown (filtered, sorted, the chosen columns) with raw numbers.
"use strict";
(function (global) {
  const SUFFIX = { K: 1e3, M: 1e6, B: 1e9, G: 1e9, T: 1e12, P: 1e15 };
  const PALETTE = ["#2f6fb3", "#d9730d", "#2e9d5b", "#c62828", "#7b4bb7", "#8c564b",
                   "#d64b9a", "#6b7280", "#b5a000", "#17a2b8"];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
      '"': "&quot;", "'": "&#39;" }[c]));
  }
  function missing(v) { return v === null || v === undefined || v === "" || (typeof v === "number" && !isFinite(v)); }
  // 1e8, 125M, 2,048, 1.4T -> number (NaN when it is not one)
  function parseHuman(text) {
    const t = String(text).trim().replace(/,/g, "").replace(/_/g, "");
    if (!t) return NaN;
    const m = /^([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*([KMBGTP])?$/i.exec(t);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] ? SUFFIX[m[2].toUpperCase()] : 1);
  }
  function sig(x, digits) { return Number(x.toPrecision(digits)).toString(); }
  // numbers as people read them: 1.2B parameters, 20B tokens, 3.4e19 FLOPs, 3e-4
  function human(v, col) {
    if (missing(v)) return "";
    if (col.kind === "date") return formatDate(v);
    if (typeof v !== "number") return String(v);
    const a = Math.abs(v);
    if (col.unit === "count" || col.unit === "tokens") {
      if (a >= 1e15) return v.toExponential(2).replace("e+", "e");
      for (const [s, f] of [["T", 1e12], ["B", 1e9], ["M", 1e6], ["K", 1e3]]) {
        if (a >= f) return sig(v / f, 3) + s;
      }
      return Number.isInteger(v) ? String(v) : sig(v, 4);
    }
    if (col.unit === "flops") return a === 0 ? "0" : v.toExponential(2).replace("e+", "e").replace(/\.?0+e/, "e");
    if (Number.isInteger(v) && a < 1e7) return String(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(2).replace("e+", "e").replace(/\.?0+e/, "e");
    return sig(v, 4);
  }
  function formatDate(v) {
    const d = new Date(typeof v === "number" ? v * 1000 : v);
    if (isNaN(d.getTime())) return String(v);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  function valueOf(row, key) {
    if (key.startsWith("tag:")) { const t = row.tags || {}; return t[key.slice(4)]; }
    if (key.startsWith("extra:")) { const x = row.extra || {}; return x[key.slice(6)]; }
    const v = row[key];
    if (key === "tags" && v && typeof v === "object") {
      return Object.entries(v).map(([k, x]) => `${k}=${x}`).join(", ");
    }
    return v;
  }
  function csvCell(v) {
    if (missing(v)) return "";
    const s = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  function SLRunsTable(root, opts = {}) {
    const state = Object.assign({ sort: "", dir: "", q: "", hidden: null, range: {}, colour: "",
                                  group: "" }, opts.state || {});
    let data = { columns: [], rows: [] };
    let picked = new Set(opts.picked || []);
    let openId = "";
    root.classList.add("rt");
    root.innerHTML =
      '<div class="rt-bar">' +
      '<input type="search" class="rt-search" placeholder="search runs" aria-label="search runs">' +
      '<details class="rt-cols"><summary>Columns</summary><div class="rt-col-list"></div></details>' +
      '<label>range <select class="rt-range-col" aria-label="column to filter by range"></select></label>' +
      '<input class="rt-min" size="6" placeholder="min" aria-label="at least">' +
      '<input class="rt-max" size="6" placeholder="max" aria-label="at most">' +
      '<label>colour <select class="rt-colour" aria-label="colour by"></select></label>' +
      '<label>group <select class="rt-group" aria-label="group by"></select></label>' +
      '<button type="button" class="rt-csv">CSV of what is shown</button>' +
      '<span class="rt-shown" aria-live="polite"></span></div>' +
      '<div class="rt-msg" hidden></div>' +
      '<div class="rt-legend"></div><div class="rt-scroll"><table class="rt-table"><thead></thead><tbody></tbody></table></div>';
    const $ = (sel) => root.querySelector(sel);
    const search = $(".rt-search"), table = $(".rt-table");

    function columns() { return data.columns; }
    function shownColumns() {
      const hidden = state.hidden || columns().filter((c) => c.hidden).map((c) => c.key);
      return columns().filter((c) => !hidden.includes(c.key));
    }
    function colOf(key) { return columns().find((c) => c.key === key) || { key, kind: "text" }; }
    function text(row, col) {
      const v = valueOf(row, col.key);
      return col.kind === "num" || col.kind === "date" ? human(v, col) : (missing(v) ? "" : String(v));
    }
    function matches(row) {
      const ranges = Object.entries(state.range);
      for (const [key, [lo, hi]] of ranges) {
        const v = valueOf(row, key);
        if (typeof v !== "number" || !isFinite(v)) return false;
        if (isFinite(lo) && v < lo) return false;
        if (isFinite(hi) && v > hi) return false;
      }
      if (!state.q) return true;
      const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
      const hay = columns().map((c) => {
        const v = valueOf(row, c.key);
        return missing(v) ? "" : `${v} ${text(row, c)}`;
      }).join(" ").toLowerCase() + " " + Object.entries(row.tags || {}).map(([k, v]) => `${k}:${v}`).join(" ").toLowerCase();
      return words.every((w) => hay.includes(w));
    }
    function compare(a, b, key) {
      const x = valueOf(a, key), y = valueOf(b, key);
      if (missing(x) && missing(y)) return 0;
      if (missing(x)) return 1;   // missing last, whichever the direction
      if (missing(y)) return -1;
      if (typeof x === "number" && typeof y === "number") return x - y;
      return String(x).localeCompare(String(y), undefined, { numeric: true });
    }
    function visibleRows() {
      const rows = data.rows.filter(matches);
      if (state.sort) {
        const sign = state.dir === "descending" ? -1 : 1;
        rows.sort((a, b) => {
          const ma = missing(valueOf(a, state.sort)), mb = missing(valueOf(b, state.sort));
          if (ma !== mb) return ma ? 1 : -1;
          return sign * compare(a, b, state.sort);
        });
      }
      return rows;
    }
    function groupKeyOf(row, key) { const v = valueOf(row, key); return missing(v) ? "(none)" : String(v); }
    function colours(rows, key) {
      const values = [...new Set(rows.map((r) => groupKeyOf(r, key)))].sort((a, b) =>
        a.localeCompare(b, undefined, { numeric: true }));
      return new Map(values.map((v, i) => [v, PALETTE[i % PALETTE.length]]));
    }

    function options(sel, items, value, blank) {
      sel.innerHTML = (blank ? `<option value="">${esc(blank)}</option>` : "") +
        items.map((c) => `<option value="${esc(c.key)}">${esc(c.label || c.key)}</option>`).join("");
      sel.value = items.some((c) => c.key === value) ? value : "";
    }
    function renderControls() {
      const shown = shownColumns().map((c) => c.key);
      $(".rt-col-list").innerHTML = columns().map((c) =>
        `<label><input type="checkbox" value="${esc(c.key)}"${shown.includes(c.key) ? " checked" : ""}> ` +
        `${esc(c.label || c.key)}</label>`).join("");
      const numeric = columns().filter((c) => c.kind === "num");
      const rangeKey = $(".rt-range-col").value || Object.keys(state.range)[0] || "loss";
      options($(".rt-range-col"), numeric, rangeKey, "");
      const groupable = columns().filter((c) => c.kind !== "num" || c.key === "lr" ||
                                                c.key === "batch_tokens" || c.key === "N");
      options($(".rt-colour"), groupable, state.colour, "none");
      options($(".rt-group"), groupable, state.group, "none");
      search.value = state.q;
    }
    function headCell(c) {
      const sort = state.sort === c.key ? state.dir : "none";
      const cls = c.kind === "num" ? "" : ' class="l"';
      return `<th${cls} data-key="${esc(c.key)}" aria-sort="${sort}" tabindex="0" ` +
        `title="sort by ${esc(c.label || c.key)}${c.unit === "flops" ? " (FLOPs)" : ""}">` +
        `${esc(c.label || c.key)}<span class="rt-arrow" aria-hidden="true">` +
        `${sort === "ascending" ? "▲" : sort === "descending" ? "▼" : ""}</span></th>`;
    }
    function cell(row, c, colour) {
      const v = valueOf(row, c.key);
      if (c.kind === "status") {
        const s = missing(v) ? "finished" : String(v);
        const why = row.error ? ` title="${esc(row.error)}"` : "";
        return `<td class="l"><span class="rt-badge rt-${esc(s)}"${why}>${esc(s)}</span></td>`;
      }
      const t = text(row, c);
      if (c.kind === "num") {
        const full = missing(v) ? "missing" : String(v);
        return `<td title="${esc(full)}">${esc(t)}</td>`;
      }
      const dot = colour ? `<span class="rt-dot" style="background:${colour}"></span>` : "";
      // long tags and sources are cut (the whole text on hover), never widening the panel
      return `<td class="l" title="${esc(t)}">${dot}<span class="rt-cut">${esc(t)}</span></td>`;
    }
    function render() {
      const cols = shownColumns();
      const rows = visibleRows();
      const sel = opts.selectable;
      table.tHead.innerHTML = "<tr>" + (sel ? '<th class="l" title="overlay its curve">curve</th>' : "") +
        cols.map(headCell).join("") + "</tr>";
      const palette = state.colour ? colours(data.rows, state.colour) : null;
      const line = (r) => {
        const c = palette ? palette.get(groupKeyOf(r, state.colour)) : "";
        const first = cols.findIndex((x) => x.kind !== "num" && x.kind !== "status");
        return `<tr data-id="${esc(r.run_id)}"${r.run_id === openId ? ' class="open"' : ""}` +
          (c ? ` style="box-shadow: inset 4px 0 0 ${c}"` : "") + ">" +
          (sel ? `<td class="l"><input type="checkbox" aria-label="overlay the curve of ${esc(r.run_id)}"` +
                 `${picked.has(r.run_id) ? " checked" : ""}></td>` : "") +
          cols.map((col, i) => cell(r, col, i === first ? c : "")).join("") + "</tr>";
      };
      let body = "";
      if (state.group) {
        const groups = new Map();
        for (const r of rows) {
          const k = groupKeyOf(r, state.group);
          if (!groups.has(k)) groups.set(k, []);
          groups.get(k).push(r);
        }
        const span = cols.length + (sel ? 1 : 0);
        for (const [k, members] of groups) {
          const losses = members.map((r) => r.loss).filter((x) => typeof x === "number" && isFinite(x));
          const best = losses.length ? ` · best loss ${sig(Math.min(...losses), 4)}` : "";
          body += `<tr class="rt-group-row"><th class="l" colspan="${span}">` +
            `${esc(colOf(state.group).label || state.group)} = ${esc(k)} · ${members.length} ` +
            `run${members.length === 1 ? "" : "s"}${best}</th></tr>` + members.map(line).join("");
        }
      } else {
        body = rows.map(line).join("");
      }
      table.tBodies[0].innerHTML = body;
      $(".rt-shown").textContent = `${rows.length} of ${data.rows.length} shown`;
      $(".rt-legend").innerHTML = palette ? [...palette].map(([k, c]) =>
        `<span class="rt-key"><span class="rt-dot" style="background:${c}"></span>${esc(k)}</span>`).join("") : "";
      $(".rt-msg").hidden = rows.length > 0 || !data.rows.length;
      $(".rt-msg").textContent = rows.length ? "" : "No run matches the search or the ranges.";
      root.dataset.sort = state.sort ? `${state.sort} ${state.dir}` : "";
      if (opts.onState) opts.onState(Object.assign({}, state));
    }

    function csv() {
      const cols = shownColumns();
      const lines = [cols.map((c) => csvCell(c.key)).join(",")];
      for (const r of visibleRows()) lines.push(cols.map((c) => csvCell(valueOf(r, c.key))).join(","));
      return lines.join("\n") + "\n";
    }
    function download() {
      const blob = new Blob([csv()], { type: "text/csv" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = opts.filename || "runs.csv";
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }
    function sortBy(key) {
      if (state.sort !== key) { state.sort = key; state.dir = "ascending"; }
      else state.dir = state.dir === "ascending" ? "descending" : "ascending";
      render();
    }
    function setRange() {
      const key = $(".rt-range-col").value;
      const lo = parseHuman($(".rt-min").value), hi = parseHuman($(".rt-max").value);
      const bad = [$(".rt-min"), $(".rt-max")].filter((el) => el.value.trim() && isNaN(parseHuman(el.value)));
      for (const el of [$(".rt-min"), $(".rt-max")]) el.classList.toggle("rt-bad", bad.includes(el));
      state.range = {};
      if (key && (isFinite(lo) || isFinite(hi))) state.range[key] = [lo, hi];
      render();
    }

    table.tHead.addEventListener("click", (e) => {
      const th = e.target.closest("th[data-key]");
      if (th) sortBy(th.dataset.key);
    });
    table.tHead.addEventListener("keydown", (e) => {
      const th = e.target.closest("th[data-key]");
      if (th && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); sortBy(th.dataset.key); }
    });
    search.addEventListener("input", () => { state.q = search.value.trim(); render(); });
    $(".rt-col-list").addEventListener("change", () => {
      state.hidden = [...root.querySelectorAll(".rt-col-list input")].filter((b) => !b.checked).map((b) => b.value);
      render();
    });
    for (const sel of [".rt-min", ".rt-max"]) $(sel).addEventListener("input", setRange);
    $(".rt-range-col").addEventListener("change", setRange);
    $(".rt-colour").addEventListener("change", () => { state.colour = $(".rt-colour").value; render(); });
    $(".rt-group").addEventListener("change", () => { state.group = $(".rt-group").value; render(); });
    $(".rt-csv").addEventListener("click", download);
    table.tBodies[0].addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-id]");
      if (!tr) return;
      const id = tr.dataset.id;
      if (e.target.matches("input[type=checkbox]")) {
        if (e.target.checked) picked.add(id); else picked.delete(id);
        if (opts.onPick) opts.onPick(id, e.target.checked);
        return;
      }
      if (opts.onOpen) opts.onOpen(id);
    });

    return {
      setData(payload) { data = payload; renderControls(); render(); },
      setPicked(ids) { picked = new Set(ids); render(); },
      setOpen(id) {
        openId = id || "";
        for (const tr of table.querySelectorAll("tr[data-id]")) tr.classList.toggle("open", tr.dataset.id === openId);
      },
      csv, state, render, rows: visibleRows,
    };
  }
  SLRunsTable.human = human;
  SLRunsTable.parseHuman = parseHuman;
  global.SLRunsTable = SLRunsTable;
})(typeof window !== "undefined" ? window : globalThis);
