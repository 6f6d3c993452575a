/* The customer's status page: poll the case every 5 s, count down to the promise every second.
   Reads everything from data- attributes of #status (no inline script: CSP script-src 'self').
   Only textContent is written, never HTML. Polling stops once the case is resolved. */
(function () {
  "use strict";
  var POLL_MS = 5000;
  var root = document.getElementById("status");
  if (!root || !window.fetch) { return; }
  var message = document.getElementById("status-message");
  var promise = document.getElementById("promise");
  var countdown = document.getElementById("countdown");
  var note = document.getElementById("live-note");
  var url = root.getAttribute("data-poll");
  var state = root.getAttribute("data-state");
  var deadline = Date.parse(root.getAttribute("data-deadline"));
  // Server time minus this device's time: the countdown follows the server's clock.
  var offset = Date.parse(root.getAttribute("data-now")) - Date.now();
  var pollTimer = null;
  var tickTimer = null;

  function isOpen() { return state === "paging" || state === "missed"; }

  function clock(ms) {
    var total = Math.ceil(ms / 1000);
    var minutes = Math.floor(total / 60);
    var seconds = total % 60;
    return minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
  }

  function tick() {
    if (!countdown) { return; }
    promise.hidden = !isOpen();
    var left = deadline - (Date.now() + offset);
    if (left > 0) {
      countdown.textContent = countdown.getAttribute("data-left").replace("{time}", clock(left));
      countdown.classList.remove("warn");
    } else {
      countdown.textContent = countdown.getAttribute("data-over");
      countdown.classList.add("warn");
    }
  }

  function show(data) {
    state = data.state;
    root.setAttribute("data-state", state);
    if (message.textContent !== data.message) { message.textContent = data.message; }
    message.className = "state state-" + state;
    deadline = Date.parse(data.deadline_at);
    offset = Date.parse(data.now) - Date.now();
    tick();
    if (state === "resolved") { stop(); }
  }

  function poll() {
    if (document.hidden) { return; }
    fetch(url, { cache: "no-store", credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () { /* offline for a moment: keep what we have, try again */ });
  }

  function stop() {
    if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
    if (tickTimer !== null) { clearInterval(tickTimer); tickTimer = null; }
    if (note) { note.hidden = true; }
  }

  if (state === "resolved") { return; }
  if (note) { note.hidden = false; }
  tick();
  tickTimer = setInterval(tick, 1000);
  pollTimer = setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && pollTimer !== null) { poll(); }
  });
}());
