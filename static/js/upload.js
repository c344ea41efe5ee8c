// Progressive enhancement of the evidence upload form: drag-and-drop and a progress bar.
// Without JavaScript the same form posts as plain multipart and the server redirects back.
// Every text comes from the form's data- attributes, rendered in the page's language.
(function () {
  "use strict";
  var form = document.querySelector("form.upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest || !window.DOMParser) {
    return;
  }
  var input = form.querySelector("input[type=file]");
  var button = form.querySelector("button[type=submit]");
  var texts = form.dataset;

  // Fill a text's {name} placeholders.
  function text(template, values) {
    return (template || "").replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : whole;
    });
  }

  var zone = document.createElement("div");
  zone.className = "drop-zone";
  zone.textContent = texts.dropText || "";
  form.parentNode.insertBefore(zone, form);

  var progress = document.createElement("progress");
  progress.max = 100;
  progress.value = 0;
  progress.hidden = true;
  var status = document.createElement("span");
  status.className = "upload-status";
  status.setAttribute("role", "status");
  form.appendChild(progress);
  form.appendChild(status);

  function showChosen() {
    var names = [];
    for (var i = 0; i < input.files.length; i += 1) {
      names.push(input.files[i].name);
    }
    status.textContent = names.length
      ? text(texts.chosenText, { names: names.join(texts.nameSeparator || ", ") })
      : "";
  }

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () {
      zone.classList.remove("over");
    });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showChosen();
    }
  });
  input.addEventListener("change", showChosen);

  // While a file is on its way, leaving the page (submit, withdraw, any other form) cancels it:
  // such a submit is held, saying why, until the upload has finished or failed.
  var busy = false;
  var held = false; // a submit was held: its reason stays shown, the bar shows the progress
  document.addEventListener(
    "submit",
    function (event) {
      if (busy && event.target !== form) {
        event.preventDefault();
        event.stopImmediatePropagation();
        held = true;
        status.textContent = texts.busyText || "";
      }
    },
    true
  );

  function fail(message) {
    busy = false;
    held = false;
    progress.hidden = true;
    button.disabled = false;
    status.textContent = message;
    status.classList.add("error");
  }

  form.addEventListener("submit", function (event) {
    if (!input.files.length) {
      return; // the browser's own "required" check, or the server, explains
    }
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        progress.value = Math.round((e.loaded * 100) / e.total);
        if (held) {
          return;
        }
        status.textContent = text(texts.progressText, { percent: progress.value });
      }
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 200) {
        var answer = JSON.parse(xhr.responseText);
        window.location.assign(answer.redirect);
        return;
      }
      // A refusal comes back as the item page with the reason in its error box, or, when
      // refused before the view (a body over the size limit, an expired form), as the error
      // page with the reason in its text.
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var box = page.querySelector(".flash-error") || page.querySelector(".error-text");
      fail(box ? box.textContent : text(texts.failedText, { status: xhr.status }));
    });
    xhr.addEventListener("error", function () {
      fail(texts.interruptedText || "");
    });
    status.classList.remove("error");
    progress.hidden = false;
    button.disabled = true;
    busy = true;
    xhr.send(new FormData(form));
  });
})();
