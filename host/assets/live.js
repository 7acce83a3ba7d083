// Keeps a tracking page live, whatever its theme: on every change event from the server the
// page is fetched again and each element marked `data-portico-live` is replaced by its fresh
// version. A region holding a form the visitor has started is left alone.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-portico-live][id]");
  if (!regions.length || !window.EventSource) { return; }
  var touched = false;
  document.addEventListener("input", function () { touched = true; });

  function refresh() {
    fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        // The fresh page's styles carry another nonce; parsing them would only raise policy
        // reports, and nothing outside the live regions is used.
        html = html.replace(/<style[\s\S]*?<\/style>/gi, "");
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-portico-live][id]").forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (!next) { return; }
          if (touched && region.querySelector("form") && next.querySelector("form")) { return; }
          region.innerHTML = next.innerHTML;
        });
        var status = fresh.body && fresh.body.getAttribute("data-status");
        if (status) { document.body.setAttribute("data-status", status); }
        document.documentElement.setAttribute("data-portico-updated", String(Date.now()));
      })
      .catch(function () { /* the next event tries again */ });
  }

  // The first event arrives on connecting: refreshing then also catches a change made
  // between rendering the page and opening the stream.
  new EventSource(window.location.pathname + "/events").addEventListener("ticket", refresh);
})();
