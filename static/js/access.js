// What every page does for keyboard and screen-reader users (loaded by base.html).
// A static file: the Content-Security-Policy forbids inline script. Everything here is an
// addition: without script the pages work as they are.
(function () {
  "use strict";

  // The menu toggle of narrow screens (and of a page zoomed to 200 %) is a checkbox that shows
  // the menu without script. With script it also says whether the menu is open
  // (aria-expanded), so a screen reader announces "expanded"/"collapsed", not only "checked".
  var toggle = document.getElementById("nav-toggle");
  if (toggle) {
    var update = function () {
      toggle.setAttribute("aria-expanded", toggle.checked ? "true" : "false");
    };
    toggle.addEventListener("change", update);
    // Escape in the header closes an open menu and leaves the focus on its toggle.
    toggle.parentNode.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.checked) {
        toggle.checked = false;
        update();
        toggle.focus();
      }
    });
    update();
  }

  // A wide table scrolls inside itself on a narrow (or zoomed) screen. One without a link or a
  // field in it could then not be scrolled from the keyboard: it becomes a Tab stop while it
  // scrolls (and stops being one when the screen is wide enough again).
  var focusable = "a[href], button, input, select, textarea, [tabindex]";
  function scrollers() {
    var boxes = document.querySelectorAll("table.grid, .table-scroll, .matrix-wrap, .chart-box");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      var added = box.hasAttribute("data-scroll-stop");
      if (box.hasAttribute("tabindex") && !added) {
        continue;
      }
      var scrolls = box.scrollWidth > box.clientWidth + 1 && !box.querySelector(focusable);
      if (scrolls && !added) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroll-stop", "");
      } else if (!scrolls && added) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-stop");
      }
    }
  }
  var pending = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(pending);
    pending = window.setTimeout(scrollers, 150);
  });
  scrollers();
})();
