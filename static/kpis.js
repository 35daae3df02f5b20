// The KPI screen's two charts, drawn with the vendored Chart.js from the numbers the page hands
// over in <script type="application/json" id="kpi-chart"> (the CSP allows no inline script).
// Right to left in Hebrew: the days run from the right, the value axis stands on the right.
"use strict";

(function () {
  const COLORS = {
    phone: "#174ea6", whatsapp: "#1a7f37", sms: "#b26a00", email: "#5b2a9a", web: "#0b5f6a", "walk-in": "#5d6677",
  };
  const drawn = [];

  function axes(rtl, horizontal) {
    const value = { beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#e6e9ef" } };
    const category = { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } };
    const side = rtl ? "right" : "left";
    if (horizontal) return { x: { ...value, reverse: rtl }, y: { ...category, position: side } };
    return { x: { ...category, reverse: rtl }, y: { ...value, position: side } };
  }

  function chart(canvas, labels, values, colors, data, horizontal) {
    const rtl = data.dir === "rtl";
    return new Chart(canvas, {
      type: "bar",
      data: { labels, datasets: [{ label: data.label, data: values, backgroundColor: colors, borderRadius: 3, maxBarThickness: 36 }] },
      options: {
        indexAxis: horizontal ? "y" : "x",
        locale: data.locale,
        maintainAspectRatio: false,
        animation: false,
        scales: axes(rtl, horizontal),
        plugins: { legend: { display: false }, tooltip: { rtl, textDirection: data.dir } },
      },
    });
  }

  function draw() {
    const source = document.getElementById("kpi-chart");
    if (!source || typeof Chart === "undefined") return;
    drawn.splice(0).forEach((old) => old.destroy());
    const data = JSON.parse(source.textContent);
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#5d6677";
    const days = document.getElementById("chart-days");
    if (days) drawn.push(chart(days, data.days.labels, data.days.values, "#1f6feb", data, false));
    const channels = document.getElementById("chart-channels");
    if (channels) {
      const colors = data.channels.keys.map((key) => COLORS[key] || "#1f6feb");
      drawn.push(chart(channels, data.channels.labels, data.channels.values, colors, data, true));
    }
  }

  document.addEventListener("DOMContentLoaded", draw);
  // A soft reload of #main (app.js) brings new numbers without running scripts: draw again.
  document.addEventListener("htmx:afterSettle", draw);
})();
