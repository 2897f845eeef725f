// Live updates: the server sends "change" events; the page fetches its own
// URL again and swaps the live part, unless the operator is typing in it.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) { return; }
  var busy = false, pending = false;

  function dirty() {
    var fields = live.querySelectorAll("input:not([type=hidden]), textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f === document.activeElement) { return true; }
      if (f.tagName === "SELECT") {
        var initial = 0; // with no option marked selected, the first one is
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].defaultSelected) { initial = j; break; }
        }
        if (f.selectedIndex !== initial) { return true; }
      } else if (f.value !== f.defaultValue) { return true; }
    }
    return false;
  }

  function refresh() {
    if (busy || dirty()) { pending = true; return; }
    busy = true;
    fetch(location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html;
          document.dispatchEvent(new CustomEvent("station:refreshed"));
        }
      })
      .catch(function () { pending = true; })
      .then(function () {
        busy = false;
        if (pending) { pending = false; setTimeout(refresh, 250); }
      });
  }

  live.addEventListener("focusout", function () { if (pending) { setTimeout(refresh, 250); } });
  // Countdowns (express time left) move with the clock, not with events.
  setInterval(function () { if (live.querySelector("[data-tick]")) { refresh(); } }, 30000);
  var es = new EventSource("/ui/events?v=" + encodeURIComponent(live.dataset.version || ""));
  es.addEventListener("change", refresh);
  es.addEventListener("open", function () { document.documentElement.dataset.live = "connected"; });
})();

// "Back" links on error pages without inline script (the CSP forbids it).
document.addEventListener("click", function (e) {
  var a = e.target.closest && e.target.closest("a.js-back");
  if (a) { e.preventDefault(); history.back(); }
});
