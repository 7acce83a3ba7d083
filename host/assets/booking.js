// Enhances the booking page, whatever its theme; the page works without it. The booking button
// stays disabled until a window is chosen and then names it, and each form is sent only once.
(function () {
  "use strict";
  var form = document.getElementById("booking-form");
  var button = form && form.querySelector("button[type=submit]");
  if (button) {
    var label = button.textContent.trim();
    var update = function () {
      var chosen = form.querySelector("input[name=window]:checked");
      button.disabled = !chosen;
      if (!chosen) {
        button.textContent = label;
        return;
      }
      var legend = chosen.closest("fieldset") && chosen.closest("fieldset").querySelector("legend");
      var day = legend ? legend.textContent.trim() + ", " : "";
      button.textContent = label + ": " + day + chosen.parentElement.textContent.trim();
    };
    form.addEventListener("change", update);
    update();
  }
  ["booking-form", "cancel-form"].forEach(function (id) {
    var sent = document.getElementById(id);
    if (!sent) { return; }
    sent.addEventListener("submit", function (event) {
      if (sent.dataset.sending) {
        event.preventDefault();
        return;
      }
      sent.dataset.sending = "1";
      sent.setAttribute("aria-busy", "true");
    });
  });
})();
