// The console's device and group pages (loaded after app.js, whose helpers they use: h, api,
// guard, features, has, stateBadge, toast, S). Server text is only ever set as textContent.
"use strict";

// ---------- devices ----------

async function devicesPage(view) {
  const line = errorLine();
  const body = h("tbody", { id: "device-rows" });
  view.append(
    h("section", { class: "card" }, h("h1", { text: "Devices" }), line,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Name" }), h("th", { text: "State" }), h("th", { class: "opt", text: "WhatsApp" }))),
        body))),
  );
  async function load() {
    let rows;
    if (S.role === "admin") {
      const { data } = await api("GET", "/admin/users?limit=1000");
      rows = data.map((u) => ({ key: u.id, name: u.name, state: u.state, jid: u.jid }));
    } else {
      const { data } = await api("GET", "/devices");
      rows = data.devices.map((d) => ({ key: d.id, name: d.name, state: d.status, jid: d.whatsapp_jid }));
    }
    body.replaceChildren(...rows.map((r) => h("tr", {},
      h("td", {}, h("a", { href: "#/device/" + encodeURIComponent(r.key), text: r.name })),
      h("td", {}, stateBadge(r.state)),
      h("td", { class: "mono opt", text: r.jid || "" }))));
  }
  const tick = guard(line, load);
  await tick();
  const timer = setInterval(tick, 3000);
  S.cleanups.push(() => clearInterval(timer));
}

// How one device is reached: admin routes by user id, or the user's routes by device id.
function deviceApi(key) {
  if (S.role === "admin") {
    const base = "/admin/users/" + encodeURIComponent(key);
    return {
      status: async () => {
        const { data } = await api("GET", base);
        return { name: data.name, state: data.state, jid: data.jid, reason: data.reason };
      },
      pair: () => api("POST", base + "/pair"),
      connect: () => api("POST", base + "/connect"),
      disconnect: () => api("POST", base + "/disconnect"),
      logout: () => api("POST", base + "/logout"),
      qrImage: async () => {
        const response = await fetch(base + "/qr?format=svg", { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) return null;
        return URL.createObjectURL(await response.blob());
      },
      events: base + "/events",
      asUser: key,
      query: "",
    };
  }
  const query = "?device_id=" + encodeURIComponent(key);
  return {
    status: async () => {
      const { data } = await api("GET", "/devices");
      const d = data.devices.find((x) => x.id === key) || {};
      return { name: d.name, state: d.status, jid: d.whatsapp_jid };
    },
    pair: () => api("GET", "/qr" + query),
    connect: () => api("POST", "/connect" + query),
    disconnect: () => api("POST", "/disconnect" + query),
    logout: () => api("POST", "/logout" + query),
    qr: async () => (await api("GET", "/qr" + query)).data.data,
    events: null,
    asUser: null,
    query,
  };
}

// An admin reaches a user's device through the user's routes (X-WUTS-User). With one device
// they need no device_id; a user with several is asked for the first one, the one the admin
// routes act on (listed first).
async function pickDevice(dev, key) {
  if (S.role !== "admin" || dev.query) return;
  const { data } = await api("GET", "/admin/users/" + encodeURIComponent(key) + "/devices");
  const devices = (data && data.devices) || [];
  if (devices.length > 1) dev.query = "?device_id=" + encodeURIComponent(devices[0].id);
}

async function devicePage(view, key) {
  const dev = deviceApi(key);
  const line = errorLine();
  const title = h("h1", { id: "device-title", text: "Device" });
  const badge = h("span", { id: "device-state" });
  const jid = h("span", { class: "mono", id: "device-jid" });
  const reason = h("p", { class: "muted", id: "device-reason" });
  const img = h("img", { id: "qr-image", alt: "QR code to scan with WhatsApp on the phone" });
  const countdown = h("p", { id: "qr-countdown", "aria-live": "polite" });
  const qrBox = h("div", { class: "qr", id: "qr-box", hidden: true }, img,
    h("div", {}, h("p", { text: "On the phone: WhatsApp > Linked devices > Link a device, then scan." }), countdown));
  let expiresAt = 0;
  let shownCode = null;
  let codeMode = false;
  let codeAllowed = false;

  function showState(s) {
    badge.replaceChildren(stateBadge(s.state));
    badge.dataset.state = s.state || "";
    jid.textContent = s.jid || "";
    reason.textContent = s.reason ? s.reason.code + ": " + s.reason.message : "";
    if (s.state !== "pairing") {
      qrBox.hidden = true;
      shownCode = null;
    }
    // Pairing by phone code is offered while the device is not linked.
    phoneBox.hidden = !codeAllowed || s.state === "connected";
  }

  async function refresh() {
    const s = await dev.status();
    if (s.name) title.textContent = "Device of " + s.name;
    showState(s);
    return s;
  }

  async function showQr(code, expires) {
    // Pairing by phone code: the code is what the operator follows, not a QR code.
    if (codeMode || (code && code === shownCode)) return;
    if (dev.qrImage) {
      const url = await dev.qrImage();
      if (!url || codeMode) return;
      if (img.src && img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = url;
      expiresAt = expires;
    } else {
      const qr = await dev.qr();
      if (codeMode) return;
      img.src = qr.image; // a data: URL made by the gateway
      expiresAt = Date.parse(qr.expires_at) / 1000;
      code = qr.qr_code;
    }
    shownCode = code;
    img.dataset.code = code || "";
    qrBox.hidden = false;
  }

  const timer = setInterval(() => {
    if (qrBox.hidden) return;
    const left = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
    countdown.textContent = left > 0 ? "This code changes in " + left + " s." : "Waiting for the next code…";
    if (left === 0 && !dev.events) showQr(null, 0).catch(() => {});
  }, 1000);
  S.cleanups.push(() => clearInterval(timer));

  const act = (name, fn, confirmText) => h("button", {
    type: "button",
    id: "action-" + name.toLowerCase().replace(/ /g, "-"),
    class: name === "Log out" ? "danger" : "",
    text: name,
    on: { click: guard(line, async () => {
      if (confirmText && !confirm(confirmText)) return;
      await fn();
      const s = await refresh();
      if (name === "Pair" && !dev.events) await showQr(null, 0);
      toast(name + ": " + (s.state || "done"));
    }) },
  });

  const phone = h("input", { id: "pair-phone", inputmode: "tel", autocomplete: "tel", placeholder: "5511999990000" });
  const phoneCode = h("p", { class: "pair-code", id: "pair-code", "aria-live": "polite" });
  const phoneExpiry = h("p", { class: "muted", id: "pair-code-expiry" });
  let codeExpiresAt = 0;
  const phoneBox = h("form", { class: "row", id: "paircode-form", hidden: true,
    on: { submit: guard(line, async () => {
      // POST /paircode: the gateway answers the 8-character code to type on the phone.
      const { data } = await api("POST", "/paircode" + dev.query, { phone: phone.value }, { asUser: dev.asUser });
      const payload = (data && data.data) || {};
      phoneCode.replaceChildren(h("span", { text: "Code: " }),
        h("strong", { class: "mono", id: "pair-code-value", text: payload.code || "" }));
      phoneCode.dataset.code = payload.code || "";
      phoneExpiry.dataset.instructions = payload.instructions || "";
      codeExpiresAt = Date.now() / 1000 + (payload.expires_in || 0);
      codeMode = true;
      qrBox.hidden = true;
      tickCode();
      await refresh();
    }) } },
    h("div", {}, h("label", { for: "pair-phone", text: "Pair by phone number instead" }), phone),
    h("button", { type: "submit", id: "paircode-submit", text: "Get a code" }));
  function tickCode() {
    if (!phoneCode.dataset.code) return;
    const left = Math.max(0, Math.round(codeExpiresAt - Date.now() / 1000));
    phoneExpiry.textContent = left > 0
      ? "Valid for " + left + " s. " + (phoneExpiry.dataset.instructions || "")
      : "This code expired: ask for a new one.";
  }
  const codeTimer = setInterval(tickCode, 1000);
  S.cleanups.push(() => clearInterval(codeTimer));

  view.append(h("section", { class: "card" },
    h("p", {}, h("a", { href: "#/devices", text: "← All devices" })),
    title,
    h("p", {}, "State: ", badge, " ", jid),
    reason,
    h("div", {},
      act("Pair", dev.pair),
      act("Connect", dev.connect),
      act("Disconnect", dev.disconnect),
      act("Log out", dev.logout, "Log this device out of WhatsApp? It must be paired again."),
      h("a", { href: "#/groups/" + encodeURIComponent(key), id: "groups-link", class: "go", text: "Groups →" }),
      h("a", { href: "#/communities/" + encodeURIComponent(key), id: "communities-link", class: "go", text: "Communities →" }),
      h("a", { href: "#/webhooks/" + encodeURIComponent(key), id: "webhooks-link", class: "go", text: "Webhooks →" })),
    line, qrBox, phoneBox, phoneCode, phoneExpiry));

  await features();
  codeAllowed = has("POST /paircode");
  phoneBox.hidden = !codeAllowed;
  await pickDevice(dev, key).catch((error) => (line.textContent = error.message));

  try {
    await refresh();
  } catch (error) {
    line.textContent = error.message;
  }
  if (dev.events) {
    // Cookie-authenticated, so EventSource works without an Authorization header.
    const source = new EventSource(dev.events);
    S.cleanups.push(() => source.close());
    const parse = (e) => {
      try { return JSON.parse(e.data); } catch (_) { return {}; }
    };
    source.addEventListener("state", (e) => showState(parse(e)));
    source.addEventListener("qr", (e) => {
      const qr = parse(e);
      showQr(qr.code, qr.expires_at).catch((error) => (line.textContent = error.message));
    });
    for (const name of ["paired", "connected", "disconnected", "logged_out", "pairing_timed_out", "pairing_failed", "error"]) {
      source.addEventListener(name, () => refresh().catch(() => {}));
    }
  } else {
    const poll = setInterval(() => refresh().catch(() => {}), 2000);
    S.cleanups.push(() => clearInterval(poll));
  }
}
