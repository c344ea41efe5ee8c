// Show the print buttons (they need script) and print the page when one is pressed.
// A static file: the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("[data-print]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].hidden = false;
    buttons[i].addEventListener("click", function () {
      window.print();
    });
  }
})();
