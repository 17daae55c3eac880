/* The operators' fleet page: every box, its state and counts, refreshed every few seconds. */
"use strict";

(() => {
  const app = document.getElementById("app");
  const refreshMs = Number(app.dataset.refresh) * 1000;
  const STATES = { online: "Hoạt động", offline: "Mất kết nối", alarm: "Cảnh báo" };
  const SVG = "http://www.w3.org/2000/svg";
  let token = null, devices = [], timer = null;
  const session = Idstation.setup("fleet", (t) => { token = t; refresh(); });
  const filter = document.getElementById("site-filter");
  filter.addEventListener("change", render);

  function ago(iso) {
    const t = Date.parse(iso || "");
    if (!t) return "—";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + " giây trước";
    if (s < 3600) return Math.round(s / 60) + " phút trước";
    if (s < 86400) return Math.round(s / 3600) + " giờ trước";
    return Math.round(s / 86400) + " ngày trước";
  }

  function seconds(s) {
    if (s === null || s === undefined) return "—";
    if (s < 60) return Math.round(s) + " giây";
    if (s < 3600) return Math.round(s / 60) + " phút";
    return Math.round(s / 3600) + " giờ";
  }

  function chart(counts) {
    const svg = document.createElementNS(SVG, "svg");
    const max = Math.max(1, ...counts);
    svg.setAttribute("viewBox", "0 0 96 24");
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Sự kiện mỗi giờ: " + counts.join(", "));
    const base = document.createElementNS(SVG, "rect");
    base.setAttribute("class", "base");
    base.setAttribute("x", "0");
    base.setAttribute("y", "23");
    base.setAttribute("width", "96");
    base.setAttribute("height", "1");
    svg.appendChild(base);
    counts.forEach((n, i) => {
      const h = Math.round((n / max) * 22);
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", String(i * 4));
      bar.setAttribute("y", String(24 - h));
      bar.setAttribute("width", "3");
      bar.setAttribute("height", String(h));
      svg.appendChild(bar);
    });
    return svg;
  }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function failures(counts) {
    const parts = Object.entries(counts || {}).map(([reason, n]) => reason + ": " + n);
    return parts.length ? parts.join(", ") : "—";
  }

  function render() {
    const sites = [...new Set(devices.map((d) => d.site))].sort();
    const chosen = filter.value;
    filter.replaceChildren(new Option("Tất cả", ""), ...sites.map((s) => new Option(s, s)));
    filter.value = sites.includes(chosen) ? chosen : "";
    const rows = document.getElementById("rows");
    rows.replaceChildren();
    const shown = devices.filter((d) => !filter.value || d.site === filter.value);
    for (const d of shown) {
      const tr = document.createElement("tr");
      tr.dataset.device = d.device_id;
      tr.dataset.state = d.state;
      cell(tr, d.site); cell(tr, d.counter); cell(tr, d.device_id);
      const state = document.createElement("span");
      state.className = "state";
      state.dataset.state = d.state;
      state.textContent = STATES[d.state] || d.state;
      cell(tr, state);
      cell(tr, ago(d.last_seen));
      cell(tr, d.outbox === null || d.outbox === undefined ? "—" : String(d.outbox));
      cell(tr, d.awaiting_receipt === null || d.awaiting_receipt === undefined ? "—" : String(d.awaiting_receipt));
      cell(tr, seconds(d.oldest_unreceipted_s));
      cell(tr, failures(d.failures));
      cell(tr, chart(d.events_per_hour || []));
      rows.appendChild(tr);
    }
    const offline = shown.filter((d) => d.state !== "online").length;
    document.getElementById("summary").textContent =
      shown.length + " thiết bị · " + offline + " cần chú ý · cập nhật " + new Date().toLocaleTimeString("vi-VN");
    document.getElementById("devices").hidden = false;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const resp = await fetch("/v1/fleet", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (resp.status === 401 || resp.status === 403) {
        session.reject("Mã truy cập không đúng hoặc không có quyền xem thiết bị.");
        return;
      }
      if (!resp.ok) throw new Error("fleet " + resp.status);
      devices = (await resp.json()).devices;
      Idstation.setConnection("live", "Đã cập nhật");
      render();
    } catch (e) {
      Idstation.setConnection("lost", "Mất kết nối · đang thử lại");
    }
    timer = setTimeout(refresh, refreshMs);
  }
})();
