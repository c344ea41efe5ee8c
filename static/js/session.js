// The idle timeout counts requests: someone writing an appeal, a return reason or a score
// sheet for half an hour sends none, and their submit then met the login page, the text lost.
// Here, typing or clicking keeps the session (a POST to /session/alive at most once a minute
// while there is input); near the timeout the page asks the server how long is left
// (/session/token, which does not count as activity: another tab may be at work) and warns,
// with 继续使用; after the timeout it keeps what was typed, sends nothing, and offers a login
// in a new tab: back on this page, it takes the new session's CSRF token (/session/token)
// and the submit goes through.
// A static file (the Content-Security-Policy forbids inline script); without script the
// pages work as before. The texts come from the page (data-*), in the page's language.
(function () {
  "use strict";
  var box = document.getElementById("session-keeper");
  if (!box || !window.fetch) {
    return;
  }
  var idle = parseFloat(box.getAttribute("data-idle-seconds")) * 1000;
  if (!(idle > 0)) {
    return;
  }
  var lead = Math.min(5 * 60 * 1000, idle / 3); // the warning shows this long before
  var gap = Math.min(60 * 1000, idle / 6); // at most one keep-alive per gap
  var tick = Math.max(200, Math.min(15 * 1000, idle / 15));
  var text = box.querySelector(".session-text");
  var carryOn = box.querySelector(".session-continue");
  var login = box.querySelector(".session-login");
  var lastServer = Date.now(); // the page's own request reset the server's clock
  var lastInput = 0;
  var expired = false;
  var pinging = false;

  function csrfToken() {
    var field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function show(message, mode) {
    if (text.textContent !== message) {
      text.textContent = message; // an alert: said again only when it changes
    }
    carryOn.hidden = mode !== "warn";
    login.hidden = mode !== "expired";
    box.hidden = false;
    document.body.classList.add("has-session-keeper"); // room below the page's last lines
  }

  function hide() {
    box.hidden = true;
    document.body.classList.remove("has-session-keeper");
  }

  function markExpired() {
    expired = true;
    show(box.getAttribute("data-expired"), "expired");
  }

  function ping() {
    if (pinging || expired) {
      return;
    }
    pinging = true;
    var sent = Date.now();
    fetch(box.getAttribute("data-alive-url"), {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: { "X-CSRFToken": csrfToken() },
    })
      .then(function (response) {
        if (response.status === 204) {
          lastServer = sent;
          hide();
        } else {
          markExpired(); // the login redirect, or a CSRF refusal after a new sign-in
        }
      })
      .catch(function () {}) // the network: the next tick tries again
      .then(function () {
        pinging = false;
      });
  }

  // The session as the server has it, without counting as activity: null when it ended.
  function session() {
    return fetch(box.getAttribute("data-token-url"), {
      credentials: "same-origin",
      redirect: "manual",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.status === 200 ? response.json() : null;
      })
      .then(function (body) {
        if (!body || !body.csrf_token) {
          return null;
        }
        // Another tab's requests count too: the server says how long is left.
        lastServer = Date.now() - (idle - body.idle_seconds_left * 1000);
        return body;
      })
      .catch(function () {
        return undefined; // the network: nothing learnt
      });
  }

  function warnOrHide() {
    var left = idle - (Date.now() - lastServer);
    if (left > lead) {
      hide();
    } else {
      var minutes = String(Math.max(1, Math.ceil(left / 60000)));
      show(box.getAttribute("data-warn").replace("{minutes}", minutes), "warn");
    }
  }

  var asking = false;
  var lastAsked = 0;
  function check() {
    if (expired || asking) {
      return;
    }
    var now = Date.now();
    if (lastInput > lastServer && now - lastServer >= gap) {
      ping();
      return;
    }
    if (idle - (now - lastServer) > lead) {
      return;
    }
    // Near the timeout by this page's count: ask the server (another tab may be at work).
    if (now - lastAsked >= gap || idle - (now - lastServer) <= 0) {
      asking = true;
      lastAsked = now;
      session().then(function (body) {
        asking = false;
        if (body === null) {
          markExpired();
        } else {
          warnOrHide();
        }
      });
      return;
    }
    warnOrHide();
  }

  // Signed in again (in another tab): take the new session's CSRF token into every form.
  function renew() {
    return session().then(function (body) {
      if (!body) {
        return false;
      }
      var fields = document.querySelectorAll("input[name=csrf_token]");
      for (var i = 0; i < fields.length; i++) {
        fields[i].value = body.csrf_token;
      }
      expired = false;
      show(box.getAttribute("data-restored"), "restored");
      window.setTimeout(function () {
        if (!expired && login.hidden && carryOn.hidden) {
          hide();
        }
      }, 8000);
      return true;
    });
  }

  ["keydown", "input", "pointerdown", "wheel"].forEach(function (type) {
    document.addEventListener(
      type,
      function () {
        lastInput = Date.now();
      },
      { capture: true, passive: true }
    );
  });
  carryOn.addEventListener("click", function () {
    lastInput = Date.now();
    ping();
  });
  // A submit after the timeout would meet the login page: hold it, ask whether the user has
  // signed in again meanwhile (another tab), and send it then; else say what to do.
  document.addEventListener(
    "submit",
    function (event) {
      if (!expired) {
        return;
      }
      event.preventDefault();
      event.stopPropagation(); // nor does a page's own handler (an upload) send it
      var form = event.target;
      var submitter = event.submitter || null;
      renew().then(function (ok) {
        if (ok && form.requestSubmit) {
          form.requestSubmit(submitter);
        } else if (!ok) {
          markExpired();
          login.focus();
        }
      });
    },
    true
  );
  var onBack = function () {
    if (expired && !document.hidden) {
      renew();
    }
  };
  window.addEventListener("focus", onBack);
  document.addEventListener("visibilitychange", onBack);
  window.setInterval(check, tick);
})();
