/* The clerk's page: the citizen of the card just placed, live over the counter's event stream.
   The stream is read with fetch() (EventSource cannot send an Authorization header) and parsed
   as server-sent events; a dropped stream reconnects with Last-Event-ID, so nothing is missed. */
"use strict";

(() => {
  const app = document.getElementById("app");
  const site = app.dataset.site, counter = app.dataset.counter;
  const freshnessMs = Number(app.dataset.freshness) * 1000;
  const base = "/v1/counters/" + encodeURIComponent(site) + "/" + encodeURIComponent(counter);
  const FIELDS = ["full_name", "id_number", "date_of_birth", "gender", "nationality", "hometown",
                  "permanent_address", "issue_date", "expiry_date"];
  const DATES = new Set(["date_of_birth", "issue_date", "expiry_date"]);
  const VERDICTS = {
    verified: "Chip đã xác thực",
    unknown_issuer: "Chip đọc được · không rõ cơ quan cấp",
    qr_only: "Chỉ có mã QR · chưa xác thực",
    failed: "Xác thực thất bại",
  };
  let token = null, lastId = null, clearTimer = null, shownId = null;
  const session = Idstation.setup(site + "/" + counter, (t) => { token = t; start(); });

  function show(el, visible) { el.hidden = !visible; }

  function dateText(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    return m ? m[3] + "/" + m[2] + "/" + m[1] : value;
  }

  function fieldText(key, citizen) {
    const value = citizen[key];
    if (key === "expiry_date" && !value) return "Không thời hạn";
    if (value === null || value === undefined || value === "") return "";
    return DATES.has(key) ? dateText(String(value)) : String(value);
  }

  function verdict(event) {
    const v = event.verification || {};
    const centre = event.centre_verification;  // the centre's own check of the chip data, when it made one
    if (centre && centre.data_match === false) return "failed";
    if (centre && centre.passive === "verified") return "verified";
    if (centre && ["unknown_csca", "signer_expired"].includes(centre.passive)) return "unknown_issuer";
    const results = ["passive", "active", "chip"].map((k) => (v[k] || {}).result);
    if (v.status === "failed" || results.includes("failed")) return "failed";
    if (event.source === "qr_only" || v.status === "unverified") return "qr_only";
    if (v.status === "unknown_csca" || (v.passive || {}).result === "unknown_csca") return "unknown_issuer";
    if (v.status === "verified") return "verified";
    return "qr_only";
  }

  function clearScreen(message) {
    clearTimeout(clearTimer);
    shownId = null;
    for (const el of document.querySelectorAll("[data-field]")) el.textContent = "";
    const face = document.getElementById("face");
    face.removeAttribute("src");
    show(face, false);
    show(document.getElementById("citizen"), false);
    show(document.getElementById("waiting"), true);
    notice(message || "");
  }

  function notice(text) {
    const el = document.getElementById("notice");
    el.textContent = text;
    show(el, Boolean(text));
  }

  function showIdentity(event) {
    const received = Date.parse(event.received_at || "") || Date.now();
    if (Date.now() - received >= freshnessMs) return;  // e.g. replayed after a reconnect: too old to show
    const citizen = event.citizen || {};
    for (const key of FIELDS) {
      document.querySelector('[data-field="' + key + '"]').textContent = fieldText(key, citizen);
    }
    const face = document.getElementById("face");
    if (event.face && event.face.base64 && /^image\/[a-z0-9.+-]+$/.test(event.face.mime || "")) {
      face.src = "data:" + event.face.mime + ";base64," + event.face.base64;
      show(face, true);
      show(document.getElementById("no-face"), false);
    } else {
      face.removeAttribute("src");
      show(face, false);
      show(document.getElementById("no-face"), true);
    }
    const badge = document.getElementById("badge");
    const v = verdict(event);
    badge.dataset.verdict = v;
    const presence = (event.centre_verification || {}).presence === "proven";
    badge.textContent = VERDICTS[v] + (presence && v === "verified" ? " · thẻ thật" : "");
    document.getElementById("received").textContent =
      "Nhận lúc " + new Date(received).toLocaleTimeString("vi-VN");
    notice("");
    show(document.getElementById("waiting"), false);
    show(document.getElementById("citizen"), true);
    shownId = event.event_id;
    document.dispatchEvent(new CustomEvent("idstation:shown", { detail: event.event_id }));  // for benches
    clearTimeout(clearTimer);
    const age = Math.max(0, Date.now() - received);
    clearTimer = setTimeout(() => clearScreen(""), Math.max(0, freshnessMs - age));
  }

  function onEvent(name, data) {
    let event;
    try { event = JSON.parse(data); } catch (e) { return; }
    if (name === "identity") showIdentity(event);
    else if (name === "read_failed") clearScreen("Không đọc được thẻ. Mời đặt lại thẻ lên đầu đọc.");
  }

  function authFailed(status) {
    if (status === 401) { session.reject("Mã truy cập không đúng hoặc đã bị thu hồi."); return true; }
    if (status === 403) { session.reject("Mã truy cập này không dùng được cho quầy này."); return true; }
    return false;
  }

  async function loadLatest() {
    const resp = await fetch(base + "/identities/latest?face=1",
                             { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (authFailed(resp.status)) return false;
    if (resp.ok) showIdentity(await resp.json());
    return true;
  }

  function parseBlock(block) {
    let name = "message", data = [], id = null;
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (id !== null) lastId = id;
    if (data.length) onEvent(name, data.join("\n"));
  }

  async function readStream() {
    const headers = { Authorization: "Bearer " + token };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const resp = await fetch(base + "/stream?face=1", { headers, cache: "no-store" });
    if (authFailed(resp.status)) return false;
    if (!resp.ok || !resp.body) throw new Error("stream " + resp.status);
    Idstation.setConnection("live", "Đã kết nối");
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        parseBlock(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
    return true;
  }

  async function start() {
    clearScreen("");
    try { if (!(await loadLatest())) return; } catch (e) { /* the stream below retries */ }
    for (;;) {
      try {
        if (!(await readStream())) return;
      } catch (e) { /* network error: retry */ }
      Idstation.setConnection("lost", "Mất kết nối · đang thử lại");
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function copyText(text) {
    try {  // the Clipboard API needs a secure context (HTTPS or localhost)
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {  // plain HTTP on an intranet: the older way, through a hidden text area
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      const done = document.execCommand("copy");
      area.remove();
      return done;
    }
  }

  document.getElementById("face").addEventListener("error", () => {  // e.g. JPEG 2000, which browsers do not show
    show(document.getElementById("face"), false);
    show(document.getElementById("no-face"), true);
  });
  document.getElementById("clear").addEventListener("click", () => clearScreen(""));
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && shownId) clearScreen(""); });
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const text = document.querySelector('[data-field="' + button.dataset.copy + '"]').textContent;
      button.textContent = (await copyText(text)) ? "Đã chép" : "Không chép được";
      setTimeout(() => { button.textContent = "Sao chép"; }, 1500);
    });
  }
})();
