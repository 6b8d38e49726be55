/* trainrun dashboard: the runs table and its two views of the listed runs.

   The table: sorts by clicking a header, keeps the selection for "Compare selected",
   shows the columns chosen in "Columns" (remembered in this browser, per runs folder),
   groups rows by script or by tuning, and polls the page's JSON twin (/api/runs) for
   live statuses. The views: a scatter of a chosen metric against a chosen flag, and
   parallel coordinates over the flags that differ and the metrics, drawn as inline SVG.
   Every value from a run is inserted with textContent (or as an SVG text node), never
   as HTML. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  function readJSON(id) { return JSON.parse(document.getElementById(id).textContent); }
  var listing = readJSON("trainrun-listing");
  var dash = readJSON("trainrun-dashboard");
  var table = document.getElementById("runs");
  var tbody = table.querySelector("tbody");
  var errorBox = document.getElementById("filter-error");
  var compareButton = document.getElementById("compare");
  var count = document.getElementById("run-count");
  var chooser = document.getElementById("chooser");
  var groupSelect = document.getElementById("group-by");
  var constantBox = document.getElementById("constant-summary");
  var sort = {col: null, dir: 1};
  var selected = new Set();
  var LONG = 60;  // longer cell values are cut, the whole value in the tooltip
  var storeKey = "trainrun.columns." + listing.runs_dir;
  var groupKey = "trainrun.group." + listing.runs_dir;

  // ------------------------------------------------------------ remembered choices
  function load(key) {
    try { return JSON.parse(window.localStorage.getItem(key)); } catch (e) { return null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  // {shown: [...], hidden: [...]}: what the user changed from the defaults
  var choice = load(storeKey) || {shown: [], hidden: []};
  function visible(col) {
    if (col === "id") return true;
    if (choice.hidden.indexOf(col) >= 0) return false;
    if (choice.shown.indexOf(col) >= 0) return true;
    return listing.hidden.indexOf(col) < 0;
  }
  function columns() { return listing.columns.filter(visible); }
  groupSelect.value = load(groupKey) || "";

  // ------------------------------------------------------------ formatting
  function fmtNumber(v) {
    if (Number.isInteger(v)) return String(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    return (a >= 1e5 || a < 1e-3) ? v.toExponential(5).replace(/\.?0+e/, "e") : String(+v.toPrecision(6));
  }
  function fmtDuration(s) {
    if (typeof s !== "number") return "\u2014";
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(Math.round(s) / 60), sec = Math.round(s) % 60;
    if (m < 60) return m + " min " + sec + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function fmtWhen(v) {
    if (typeof v !== "string" || !v) return "\u2014";
    var m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(v);
    return m ? m[1] + " " + m[2] + " UTC" : v;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "\u2014";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") return fmtNumber(v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function compare(a, b) {
    var an = a === null || a === undefined, bn = b === null || b === undefined;
    if (an || bn) return an === bn ? 0 : (an ? 1 : -1);   // missing values last
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }

  // ------------------------------------------------------------ the table
  function cell(row, col) {
    var td = document.createElement("td");
    var v = row[col];
    td.className = col + (col === "id" ? " col-id" : "") + (typeof v === "number" ? " num" : "");
    td.setAttribute("data-col", col);
    if (col === "id") {
      var a = document.createElement("a");
      a.href = dash.root + "runs/" + encodeURIComponent(v);
      a.textContent = v;
      td.appendChild(a);
      if (row.run_name) {
        var name = document.createElement("span");
        name.className = "run-name";
        name.textContent = row.run_name;
        td.appendChild(name);
      }
    } else if (col === "status") {
      var b = document.createElement("span");
      b.className = "badge " + String(v).replace(/[^a-z]/g, "");
      b.setAttribute("data-status", v);
      b.textContent = v;
      td.appendChild(b);
    } else if (col === "start" || col === "end") {
      td.textContent = fmtWhen(v);
    } else if (col === "duration") {
      td.textContent = fmtDuration(v);
    } else {
      var text = fmt(v);
      if (col === "script" && typeof v === "string") text = v.split(/[\\/]/).pop();
      if (text.length > LONG) text = text.slice(0, LONG - 1) + "\u2026";
      td.textContent = text;
      if (text !== fmt(v)) td.title = fmt(v);
    }
    return td;
  }

  function renderHeader(cols) {
    var tr = table.querySelector("thead tr");
    while (tr.children.length > 1) tr.removeChild(tr.lastChild);
    tr.firstElementChild.className = "col-select";
    cols.forEach(function (col) {
      var th = document.createElement("th");
      th.className = "sortable" + (col === "id" ? " col-id" : "") +
        (sort.col === col ? (sort.dir > 0 ? " sorted-asc" : " sorted-desc") : "");
      th.setAttribute("data-col", col);
      th.textContent = col;
      tr.appendChild(th);
    });
  }

  function groupOf(row) {
    var key = groupSelect.value;
    if (!key) return null;
    var v = row[key];
    if (key === "script" && typeof v === "string") v = v.split(/[\\/]/).pop();
    return v === null || v === undefined ? "(none)" : String(v);
  }

  function render() {
    var cols = columns();
    var rows = listing.runs.slice();
    if (sort.col) {
      rows.sort(function (a, b) { return sort.dir * compare(a[sort.col], b[sort.col]); });
    }
    if (groupSelect.value) {
      // stable: rows keep their order inside a group; groups in order of first appearance
      var first = {};
      rows.forEach(function (r, i) { var g = groupOf(r); if (!(g in first)) first[g] = i; });
      rows = rows.map(function (r, i) { return [first[groupOf(r)], i, r]; })
        .sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; })
        .map(function (x) { return x[2]; });
    }
    renderHeader(cols);
    var body = document.createElement("tbody");
    var lastGroup;
    rows.forEach(function (row) {
      var g = groupOf(row);
      if (g !== null && g !== lastGroup) {
        lastGroup = g;
        var gr = document.createElement("tr");
        gr.className = "group";
        var gtd = document.createElement("td");
        gtd.colSpan = cols.length + 1;
        var n = rows.filter(function (r) { return groupOf(r) === g; }).length;
        gtd.textContent = (groupSelect.value === "script" ? "script " : "tuning ") + g + " \u00b7 " + n + " run" + (n === 1 ? "" : "s");
        gr.appendChild(gtd);
        body.appendChild(gr);
      }
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", row.id);
      var td = document.createElement("td");
      td.className = "col-select";
      var box = document.createElement("input");
      box.type = "checkbox";
      box.className = "select";
      box.value = row.id;
      box.checked = selected.has(row.id);
      td.appendChild(box);
      tr.appendChild(td);
      cols.forEach(function (col) { tr.appendChild(cell(row, col)); });
      body.appendChild(tr);
    });
    table.replaceChild(body, tbody);
    tbody = body;
    count.textContent = listing.runs.length + " shown" + (listing.total !== listing.runs.length ? " of " + listing.total : "");
    var empty = document.getElementById("empty");
    if (empty) empty.hidden = listing.runs.length > 0;
    constantBox.textContent = listing.constant_summary || "";
    constantBox.hidden = !listing.constant_summary;
    updateCompare();
    renderChooser();
    renderViews();
  }

  function renderChooser() {
    while (chooser.firstChild) chooser.removeChild(chooser.firstChild);
    listing.columns.forEach(function (col) {
      if (col === "id") return;
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = col;
      box.checked = visible(col);
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + col + (listing.constant.indexOf(col) >= 0 ? " (same in every run)" : "")));
      chooser.appendChild(label);
    });
  }
  chooser.addEventListener("change", function (ev) {
    var col = ev.target.value;
    choice.shown = choice.shown.filter(function (c) { return c !== col; });
    choice.hidden = choice.hidden.filter(function (c) { return c !== col; });
    var byDefault = listing.hidden.indexOf(col) < 0;
    if (ev.target.checked !== byDefault) (ev.target.checked ? choice.shown : choice.hidden).push(col);
    save(storeKey, choice);
    render();
  });
  groupSelect.addEventListener("change", function () { save(groupKey, groupSelect.value); render(); });

  function updateCompare() {
    var ids = listing.runs.map(function (r) { return r.id; });
    selected.forEach(function (id) { if (ids.indexOf(id) < 0) selected.delete(id); });
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = "Compare selected" + (selected.size ? " (" + selected.size + ")" : "");
  }

  table.querySelector("thead").addEventListener("click", function (ev) {
    var th = ev.target.closest("th.sortable");
    if (!th) return;
    var col = th.getAttribute("data-col");
    sort.dir = sort.col === col ? -sort.dir : 1;
    sort.col = col;
    render();
  });
  table.addEventListener("change", function (ev) {
    if (!ev.target.classList.contains("select")) return;
    if (ev.target.checked) selected.add(ev.target.value); else selected.delete(ev.target.value);
    updateCompare();
  });
  compareButton.addEventListener("click", function () {
    // keep the table's order, so the comparison reads in the order the user sees
    var ids = Array.prototype.map.call(tbody.querySelectorAll("input.select:checked"), function (b) { return b.value; });
    location.href = dash.root + "compare?runs=" + ids.map(encodeURIComponent).join(",");
  });

  // ------------------------------------------------------------ the views (inline SVG)
  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }
  function isMetric(c) { return c.indexOf("eval_") === 0 || c.indexOf("metric_") === 0; }
  function isFlag(c) { return c.indexOf("flag_") === 0; }
  function varyingFlags() { return listing.columns.filter(function (c) { return isFlag(c) && listing.constant.indexOf(c) < 0; }); }
  function fillSelect(select, options, keep) {
    var current = select.value || keep;
    while (select.firstChild) select.removeChild(select.firstChild);
    options.forEach(function (o) {
      var opt = document.createElement("option");
      opt.value = o; opt.textContent = o;
      select.appendChild(opt);
    });
    if (options.indexOf(current) >= 0) select.value = current;
  }
  // an axis over numbers, or over the distinct values of a text/boolean column
  function axis(values) {
    var nums = values.filter(function (v) { return typeof v === "number" && isFinite(v); });
    if (nums.length && nums.length === values.filter(function (v) { return v !== null && v !== undefined; }).length) {
      var lo = Math.min.apply(null, nums), hi = Math.max.apply(null, nums);
      if (lo === hi) { lo -= 0.5; hi += 0.5; }
      return {kind: "number", lo: lo, hi: hi, pos: function (v) { return typeof v === "number" ? (v - lo) / (hi - lo) : null; },
        ticks: [lo, (lo + hi) / 2, hi].map(function (t) { return [t, fmtNumber(t)]; })};
    }
    var cats = [];
    values.forEach(function (v) { var k = fmt(v); if (v !== null && v !== undefined && cats.indexOf(k) < 0) cats.push(k); });
    cats.sort(function (a, b) { return a.localeCompare(b, undefined, {numeric: true}); });
    var step = cats.length > 1 ? 1 / (cats.length - 1) : 0;
    return {kind: "category", pos: function (v) { var i = cats.indexOf(fmt(v)); return v === null || v === undefined || i < 0 ? null : (cats.length > 1 ? i * step : 0.5); },
      ticks: cats.map(function (c, i) { return [cats.length > 1 ? c : c, c]; }), cats: cats};
  }

  var scatterX = document.getElementById("scatter-x");
  var scatterY = document.getElementById("scatter-y");
  var parallelColor = document.getElementById("parallel-color");
  var viewsCount = document.getElementById("views-count");
  [scatterX, scatterY, parallelColor].forEach(function (s) {
    s.addEventListener("change", function () { drawViews(); loadViews(); });
  });
  // the views draw every listed run (all pages, at most 2,000), fetched from /api/values
  // with the table's own filter and order; until they arrive, the runs of this page
  var view = {runs: null, total: null, seq: 0};
  function viewRuns() { return view.runs || listing.runs; }
  function parallelDims() {
    var dims = varyingFlags().concat(listing.columns.filter(function (c) { return c.indexOf("eval_") === 0; }));
    if (dims.length < 2) dims = dims.concat(listing.columns.filter(function (c) { return c.indexOf("metric_") === 0; })).slice(0, 8);
    return dims;
  }
  function loadViews() {
    var cols = [scatterX.value, scatterY.value, parallelColor.value].concat(parallelDims())
      .filter(function (c, i, all) { return c && all.indexOf(c) === i; });
    var seq = ++view.seq;
    var query = location.search ? location.search.slice(1) + "&" : "";
    fetch(dash.root + "api/values?" + query + "columns=" + encodeURIComponent(cols.join(",")), {cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d || seq !== view.seq) return;  // an error, or a newer request on its way
        view.runs = d.runs;
        view.total = d.total;
        drawViews();
      }).catch(function () { /* the page's runs stay drawn */ });
  }

  function renderScatter() {
    var svg = document.getElementById("scatter");
    clear(svg);
    var xCol = scatterX.value, yCol = scatterY.value;
    if (!xCol || !yCol) {
      svg.appendChild(el("text", {x: 20, y: 40}, "No flag or metric to plot on this page."));
      return;
    }
    var W = 560, H = 320, L = 64, R = 16, T = 14, B = 44;
    var rows = viewRuns().filter(function (r) { return r[xCol] !== null && r[xCol] !== undefined && typeof r[yCol] === "number"; });
    var xa = axis(rows.map(function (r) { return r[xCol]; }));
    var ya = axis(rows.map(function (r) { return r[yCol]; }));
    function px(v) { var p = xa.pos(v); return p === null ? null : L + p * (W - L - R); }
    function py(v) { var p = ya.pos(v); return p === null ? null : H - B - p * (H - T - B); }
    svg.appendChild(el("line", {"class": "axis", x1: L, x2: W - R, y1: H - B, y2: H - B}));
    svg.appendChild(el("line", {"class": "axis", x1: L, x2: L, y1: T, y2: H - B}));
    xa.ticks.forEach(function (t) {
      var x = xa.kind === "number" ? px(t[0]) : px(t[1] === "true" ? true : t[1] === "false" ? false : t[1]);
      if (xa.kind === "category") x = L + (xa.cats.length > 1 ? xa.cats.indexOf(t[1]) / (xa.cats.length - 1) : 0.5) * (W - L - R);
      svg.appendChild(el("text", {x: x, y: H - B + 16, "text-anchor": "middle"}, t[1]));
    });
    ya.ticks.forEach(function (t) {
      var y = py(t[0]);
      svg.appendChild(el("line", {"class": "grid", x1: L, x2: W - R, y1: y, y2: y}));
      svg.appendChild(el("text", {x: L - 6, y: y + 4, "text-anchor": "end"}, t[1]));
    });
    svg.appendChild(el("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle"}, xCol));
    svg.appendChild(el("text", {x: 12, y: T + 4}, yCol));
    rows.forEach(function (r) {
      var x = xa.kind === "category" ? L + (xa.cats.length > 1 ? xa.cats.indexOf(fmt(r[xCol])) / (xa.cats.length - 1) : 0.5) * (W - L - R) : px(r[xCol]);
      var c = el("circle", {"class": "point", cx: x, cy: py(r[yCol]), r: 4.5, "data-id": r.id,
        "data-x": fmt(r[xCol]), "data-y": fmt(r[yCol])});
      c.appendChild(el("title", {}, r.id + (r.run_name ? " (" + r.run_name + ")" : "") + "\n" + xCol + " = " + fmt(r[xCol]) + "\n" + yCol + " = " + fmt(r[yCol])));
      c.addEventListener("click", function () { location.href = dash.root + "runs/" + encodeURIComponent(r.id); });
      svg.appendChild(c);
    });
  }

  var PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0b7285", "#c2255c", "#5c940d"];
  function renderParallel() {
    var svg = document.getElementById("parallel");
    clear(svg);
    var dims = parallelDims();
    var runs = viewRuns();
    if (dims.length < 2 || !runs.length) {
      svg.appendChild(el("text", {x: 20, y: 40}, "Parallel coordinates need two flags or metrics that the runs have."));
      return;
    }
    var W = 760, H = 320, L = 40, R = 40, T = 30, B = 30;
    var axes = dims.map(function (d) { return axis(runs.map(function (r) { return r[d]; })); });
    var step = (W - L - R) / (dims.length - 1);
    var colorCol = parallelColor.value;
    var colorAxis = colorCol ? axis(runs.map(function (r) { return r[colorCol]; })) : null;
    function color(r) {
      if (!colorAxis) return PALETTE[0];
      var p = colorAxis.pos(r[colorCol]);
      if (p === null) return "#9aa3b2";
      if (colorAxis.kind === "category") return PALETTE[colorAxis.cats.indexOf(fmt(r[colorCol])) % PALETTE.length];
      return "hsl(" + Math.round(220 - 200 * p) + ",70%,45%)";
    }
    runs.forEach(function (r) {
      var d = "", pen = "M";
      dims.forEach(function (dim, i) {
        var p = axes[i].pos(r[dim]);
        if (p === null) { pen = "M"; return; }
        d += pen + (L + i * step).toFixed(1) + "," + (H - B - p * (H - T - B)).toFixed(1) + " ";
        pen = "L";
      });
      var path = el("path", {"class": "line", d: d, stroke: color(r), "data-id": r.id});
      path.appendChild(el("title", {}, r.id + (r.run_name ? " (" + r.run_name + ")" : "")));
      svg.appendChild(path);
    });
    dims.forEach(function (dim, i) {
      var x = L + i * step;
      svg.appendChild(el("line", {"class": "axis", x1: x, x2: x, y1: T, y2: H - B}));
      svg.appendChild(el("text", {x: x, y: T - 12, "text-anchor": "middle", "class": "dim"}, dim.replace(/^(flag|eval|metric)_/, "")));
      var a = axes[i];
      var ticks = a.kind === "number" ? [[a.lo, fmtNumber(a.lo)], [a.hi, fmtNumber(a.hi)]] : a.cats.map(function (c) { return [c, c]; });
      ticks.forEach(function (t) {
        var p = a.kind === "number" ? a.pos(t[0]) : (a.cats.length > 1 ? a.cats.indexOf(t[1]) / (a.cats.length - 1) : 0.5);
        svg.appendChild(el("text", {x: x + 4, y: H - B - p * (H - T - B) + 4, "class": "tick"}, t[1]));
      });
    });
  }

  function drawViews() {
    var n = viewRuns().length;
    viewsCount.textContent = view.runs ? n + " run" + (n === 1 ? "" : "s") +
      (view.total > n ? " (the first " + n + " of " + view.total + " listed)" : ", every listed run") :
      n + " run" + (n === 1 ? "" : "s") + " of this page";
    renderScatter();
    renderParallel();
  }
  function renderViews() {
    var flags = varyingFlags();
    if (!flags.length) flags = listing.columns.filter(isFlag);
    var metrics = listing.columns.filter(isMetric);
    fillSelect(scatterX, flags, flags[0]);
    fillSelect(scatterY, metrics, metrics[0]);
    fillSelect(parallelColor, [""].concat(metrics).concat(flags), metrics[0] || "");
    drawViews();
    loadViews();
  }

  // ------------------------------------------------------------ the live poll
  function getJSON(path) {
    return fetch(dash.root + path + (location.search || ""), {cache: "no-store"}).then(function (r) {
      return r.json().then(function (d) { return {ok: r.ok, data: d}; });
    });
  }
  function showError(res) {
    if (!res.ok) { errorBox.textContent = res.data.error || "error"; errorBox.hidden = false; return true; }
    errorBox.hidden = true;
    return false;
  }
  // the poll asks for this page's ids and statuses alone; the page's rows are fetched
  // again only when one of them changed (a run ended, a run started)
  function unchanged(statuses) {
    if (statuses.total !== listing.total || statuses.runs.length !== listing.runs.length) return false;
    for (var i = 0; i < statuses.runs.length; i++) {
      var row = listing.runs[i];
      if (row.id !== statuses.runs[i][0] || row.status !== statuses.runs[i][1]) return false;
    }
    return true;
  }
  function poll() {
    getJSON("api/statuses").then(function (res) {
      if (showError(res) || unchanged(res.data)) return null;
      return getJSON("api/runs").then(function (full) {
        if (showError(full)) return;
        listing = full.data;
        render();
      });
    }).catch(function () { /* the server may be restarting: try again at the next tick */ });
  }

  render();
  setInterval(poll, dash.poll_ms);
  window.trainrunDashboard = {poll: poll, render: render, state: function () { return {sort: sort, listing: listing, columns: columns()}; }};
})();
