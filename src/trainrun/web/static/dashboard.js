/* trainrun dashboard: the runs table. Sorts by clicking a header, keeps the selection for
   "Compare selected", and polls the page's JSON twin (/api/runs) for live statuses.
   Every value from a run is inserted with textContent, never as HTML. */
(function () {
  "use strict";
  function readJSON(id) { return JSON.parse(document.getElementById(id).textContent); }
  var listing = readJSON("trainrun-listing");
  var dash = readJSON("trainrun-dashboard");
  var table = document.getElementById("runs");
  var tbody = table.querySelector("tbody");
  var errorBox = document.getElementById("filter-error");
  var compareButton = document.getElementById("compare");
  var count = document.getElementById("run-count");
  var sort = {col: null, dir: 1};
  var selected = new Set();
  var LONG = 60;  // longer cell values are cut, the whole value in the tooltip

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

  function cell(row, col) {
    var td = document.createElement("td");
    var v = row[col];
    td.className = col + (typeof v === "number" ? " num" : "");
    if (col === "id") {
      var a = document.createElement("a");
      a.href = dash.root + "runs/" + encodeURIComponent(v);
      a.textContent = v;
      td.appendChild(a);
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

  function renderHeader() {
    var tr = table.querySelector("thead tr");
    while (tr.children.length > 1) tr.removeChild(tr.lastChild);
    listing.columns.forEach(function (col) {
      var th = document.createElement("th");
      th.className = "sortable" + (sort.col === col ? (sort.dir > 0 ? " sorted-asc" : " sorted-desc") : "");
      th.setAttribute("data-col", col);
      th.textContent = col;
      tr.appendChild(th);
    });
  }

  function render() {
    var rows = listing.runs.slice();
    if (sort.col) {
      rows.sort(function (a, b) { return sort.dir * compare(a[sort.col], b[sort.col]); });
    }
    renderHeader();
    var body = document.createElement("tbody");
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", row.id);
      var td = document.createElement("td");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.className = "select";
      box.value = row.id;
      box.checked = selected.has(row.id);
      td.appendChild(box);
      tr.appendChild(td);
      listing.columns.forEach(function (col) { tr.appendChild(cell(row, col)); });
      body.appendChild(tr);
    });
    table.replaceChild(body, tbody);
    tbody = body;
    count.textContent = listing.runs.length + " shown" + (listing.total !== listing.runs.length ? " of " + listing.total : "");
    var empty = document.getElementById("empty");
    if (empty) empty.hidden = listing.runs.length > 0;
    updateCompare();
  }

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
  window.trainrunDashboard = {poll: poll, state: function () { return {sort: sort, listing: listing}; }};
})();
