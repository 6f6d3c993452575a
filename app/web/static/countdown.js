// Live countdowns: every element with data-deadline (ISO time) and data-now (server time at
// render) shows the time left in its data-left-text / data-over-text wording ("{time} left"),
// ticking every second, and is marked when under three minutes.
(function () {
  "use strict";
  var nodes = document.querySelectorAll("[data-deadline]");
  if (!nodes.length) { return; }
  var started = Date.now();
  function format(seconds) {
    var s = Math.abs(Math.round(seconds));
    var m = Math.floor(s / 60);
    var rest = String(s % 60).padStart(2, "0");
    return m ? m + " min " + rest + " s" : s + " s";
  }
  function tick() {
    var elapsed = (Date.now() - started) / 1000;
    nodes.forEach(function (node) {
      var left = (Date.parse(node.dataset.deadline) - Date.parse(node.dataset.now)) / 1000 - elapsed;
      var template = left >= 0 ? node.dataset.leftText : node.dataset.overText;
      node.textContent = (template || "{time}").replace("{time}", format(left));
      node.classList.toggle("warn", left < 180);
    });
  }
  tick();
  setInterval(tick, 1000);
})();
