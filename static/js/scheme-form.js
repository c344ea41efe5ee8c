// The scheme form: sums checked as one types. Every level's points must equal the sum of the
// level below (points of an indicator, indicators of a category, categories of the total).
// The server checks again when the form is saved; this only shows it early.
(function () {
  "use strict";
  var form = document.querySelector("form.scheme-form");
  if (!form) { return; }
  var label = form.dataset.labelSum || "";
  var ok = form.dataset.labelOk || "";
  var bad = form.dataset.labelBad || "";

  function cents(text) {
    var t = (text || "").trim();
    if (!/^\d+(\.\d{1,2})?$/.test(t)) { return null; }
    var parts = t.split(".");
    var frac = ((parts[1] || "") + "00").slice(0, 2);
    return parseInt(parts[0], 10) * 100 + parseInt(frac, 10);
  }
  function show(value) {
    var whole = Math.floor(value / 100);
    var frac = value % 100;
    return frac ? whole + "." + (frac < 10 ? "0" : "") + frac : String(whole);
  }
  function check() {
    form.querySelectorAll("output[data-sum-for]").forEach(function (out) {
      var key = out.dataset.sumFor;
      var sum = 0;
      var parts = 0;
      form.querySelectorAll('input[data-in="' + key + '"]').forEach(function (input) {
        var v = cents(input.value);
        if (v !== null) { sum += v; parts += 1; }
      });
      var target = form.querySelector('input[data-max="' + key + '"]');
      var max = target ? cents(target.value) : null;
      out.classList.remove("sum-ok", "sum-bad");
      if (!parts) { out.textContent = ""; return; }
      if (max === null) { out.textContent = label + " " + show(sum); return; }
      var good = max === sum;
      out.textContent = label + " " + show(sum) + (good ? " = " : " ≠ ") + show(max) + " " + (good ? ok : bad);
      out.classList.add(good ? "sum-ok" : "sum-bad");
      if (target) { target.classList.toggle("invalid", !good); }
    });
  }
  form.addEventListener("input", check);
  check();
}());
