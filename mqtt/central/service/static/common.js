/* Shared by both pages: the token kept in localStorage, sign-in and sign-out. No build step. */
"use strict";

const Idstation = (() => {
  function tokenKey(scope) { return "idstation.token." + scope; }

  function setup(scope, onToken) {
    const form = document.getElementById("signin");
    const input = document.getElementById("token-input");
    const error = document.getElementById("signin-error");
    const signout = document.getElementById("signout");
    function ask(message) {
      form.hidden = false;
      signout.hidden = true;
      error.hidden = !message;
      error.textContent = message || "";
      input.focus();
    }
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      localStorage.setItem(tokenKey(scope), token);
      input.value = "";
      form.hidden = true;
      signout.hidden = false;
      onToken(token);
    });
    signout.addEventListener("click", () => {
      localStorage.removeItem(tokenKey(scope));
      location.reload();
    });
    const fragment = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
    if (fragment) {  // a link with the token (the demo prints one): keep it, drop it from the address bar
      localStorage.setItem(tokenKey(scope), fragment[1]);
      history.replaceState(null, "", location.pathname + location.search);
    }
    const saved = localStorage.getItem(tokenKey(scope));
    if (saved) { signout.hidden = false; onToken(saved); } else { ask(""); }
    return {
      reject(message) { localStorage.removeItem(tokenKey(scope)); ask(message); },
    };
  }

  function setConnection(state, text) {
    const el = document.getElementById("connection");
    el.dataset.state = state;
    el.textContent = text;
  }

  return { setup, setConnection };
})();
