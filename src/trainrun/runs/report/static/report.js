/* trainrun report pages: chart tooltips. Inlined into the page; reads the chart data
   embedded as JSON in <script type="application/json" id="trainrun-charts">. */
(function () {
  "use strict";
  var charts = [];

  // in a notebook the page lives in a frame: tell the notebook its height, so the
  // frame fits the content instead of scrolling inside a fixed box
  var frame = document.body && document.body.getAttribute("data-frame");
  if (frame && window.parent !== window) {
    var sendHeight = function () {
      var h = document.documentElement.scrollHeight;
      // a page not laid out (yet, or any more) measures 0: keep the last real height
      if (h > 0) window.parent.postMessage({trainrunFrame: frame, height: h + 4}, "*");
    };
    window.addEventListener("load", sendHeight);
    document.addEventListener("toggle", sendHeight, true);  // a <details> opened or closed
    if (window.ResizeObserver) new ResizeObserver(sendHeight).observe(document.body);
    sendHeight();
  }

  // the comparison: hide output lines that differ only in numbers (progress lines)
  document.querySelectorAll("input.numbers-only").forEach(function (box) {
    box.addEventListener("change", function () {
      document.body.classList.toggle("hide-numbers-only", box.checked);
    });
  });

  function nearest(xs, x) {
    var lo = 0, hi = xs.length - 1;
    if (hi < 0) return -1;
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid; else hi = mid;
    }
    return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
  }
  function fmt(v) {
    if (v === 0) return "0";
    var a = Math.abs(v);
    return (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(6));
  }

  function bind() {
    var node = document.getElementById("trainrun-charts");
    if (!node) return;
    try { charts = JSON.parse(node.textContent); } catch (e) { return; }
    document.querySelectorAll("figure.chart").forEach(bindChart);
  }
  function bindChart(fig) {
    var chart = charts[+fig.getAttribute("data-chart")];
    var svg = fig.querySelector("svg");
    var tip = fig.querySelector(".tooltip");
    var cursor = svg && svg.querySelector("line.cursor");
    if (!chart || !svg || !tip || !cursor) return;
    var g = chart.geometry;
    svg.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * (g.width / box.width);
      if (px < g.left || px > g.right) { tip.style.display = "none"; return; }
      var x = g.domain[0] + (px - g.left) / (g.right - g.left) * (g.domain[1] - g.domain[0]);
      var lines = [], step = null;
      chart.series.forEach(function (s) {
        var i = nearest(s.x, x);
        if (i < 0) return;
        if (step === null) step = s.x[i];
        lines.push("<span style='color:" + s.color + "'>\u25CF</span> " +
          s.label.replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }) +
          ": " + fmt(s.y[i]));
      });
      tip.innerHTML = "step " + fmt(step) + "<br>" + lines.join("<br>");
      tip.style.display = "block";
      var fbox = fig.getBoundingClientRect();
      tip.style.left = Math.min(ev.clientX - fbox.left + 14, fbox.width - tip.offsetWidth - 4) + "px";
      tip.style.top = (ev.clientY - fbox.top + 10) + "px";
      cursor.setAttribute("x1", px); cursor.setAttribute("x2", px);
      cursor.style.display = "";
    });
    svg.addEventListener("mouseleave", function () {
      tip.style.display = "none"; cursor.style.display = "none";
    });
  }
  bind();
  // a running run's page (the dashboard) redraws its charts and calls this again
  window.trainrunCharts = {bind: bind};
})();
