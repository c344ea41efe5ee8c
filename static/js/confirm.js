// Ask before an action that cannot be taken back: a form with data-confirm (verify, score, an
// appeal's decision, the appeal itself) posts only once its user says yes in the browser's own
// dialog, in the page's language. Without script the form posts as before.
// A static file: the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var text = form && form.getAttribute ? form.getAttribute("data-confirm") : null;
    if (text && !window.confirm(text)) {
      event.preventDefault();
    }
  });
})();
