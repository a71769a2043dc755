// The console's webhooks page (loaded after app.js and devices.js, whose helpers it uses):
// one device's webhook configuration (its own, or the user's for every device without one),
// the secret shown once, the delivery log with status, attempts, last error and next retry,
// and redeliver. Everything goes through the user routes with the console's cookie session
// (an admin session names the user in X-WUTS-User); server text is only set as textContent.
"use strict";

// Unix seconds as local time; with `relative`, "in 12 s" for times close ahead.
function when(seconds, relative) {
  if (!seconds) return "";
  const date = new Date(seconds * 1000);
  const left = Math.round(seconds - Date.now() / 1000);
  if (relative && left > 0 && left < 3600) return "in " + left + " s (" + date.toLocaleTimeString() + ")";
  return date.toLocaleString();
}

function deliveryRow(d, redeliver) {
  const lastAnswer = [d.last_status ? "HTTP " + d.last_status : "", d.last_error || ""].filter(Boolean).join(" - ");
  return h("tr", { "data-delivery": d.id, "data-status": d.status },
    h("td", {}, h("span", { class: "mono", text: d.event }), h("br"), h("span", { class: "muted mono", text: d.id })),
    h("td", {}, h("span", { class: "state delivery-" + d.status, text: d.status })),
    h("td", { class: "attempts", text: String(d.attempts) }),
    h("td", { class: "last-answer", text: lastAnswer }),
    h("td", { class: "opt next-retry", text: d.status === "retrying" ? when(d.next_attempt_at, true) : "" }),
    h("td", { class: "opt", text: when(d.delivered_at || d.updated_at || d.created_at) }),
    h("td", {}, h("button", { type: "button", class: "redeliver", text: "Redeliver", on: { click: redeliver } })));
}

async function webhooksPage(view, key) {
  const dev = deviceApi(key);
  await pickDevice(dev, key).catch(() => {});
  const opts = { asUser: dev.asUser };
  const configLine = errorLine();
  const logLine = errorLine();
  const current = h("p", { id: "webhook-current", "aria-live": "polite" });
  const secretBox = h("div", { id: "webhook-secret-box" });
  const scope = h("select", { id: "webhook-scope" },
    h("option", { value: "device", text: "This device only" }),
    h("option", { value: "user", text: "Every device of this user without its own webhook" }));
  const url = h("input", { id: "webhook-url", type: "url", required: true, placeholder: "https://example.com/hooks/wuts", spellcheck: "false" });
  const events = h("div", { id: "webhook-events", class: "checks" });
  const enabled = h("input", { id: "webhook-enabled", type: "checkbox", checked: true });
  const retries = h("input", { id: "webhook-retries", type: "number", min: "0", max: "20", placeholder: "default" });
  const timeout = h("input", { id: "webhook-timeout", type: "number", min: "1", max: "120", placeholder: "default" });
  const kept = h("p", { class: "muted", id: "webhook-headers" });
  let shown = null; // the configuration loaded, to keep what the form does not show
  const secret = h("input", { id: "webhook-secret", type: "password", autocomplete: "off", spellcheck: "false",
    placeholder: "leave empty: keep the current one, or have one generated" });

  const checked = () => [...events.querySelectorAll("input:checked")].map((i) => i.value);
  function setEvents(names) {
    for (const input of events.querySelectorAll("input")) input.checked = names.includes(input.value);
  }

  async function loadConfig() {
    try {
      const { data } = await api("GET", "/webhook" + dev.query, undefined, opts);
      const w = data.webhook;
      current.textContent = (w.scope === "device" ? "This device has its own webhook: " : "This device uses the user's webhook: ") +
        w.webhook_url + (w.enabled ? "" : " (disabled)") + " - " + w.enabled_events.length + " events";
      current.dataset.scope = w.scope;
      scope.value = w.scope;
      url.value = w.webhook_url;
      enabled.checked = !!w.enabled;
      retries.value = w.retry_attempts;
      timeout.value = w.timeout;
      const names = Object.keys(w.headers || {});
      kept.textContent = names.length ? "Custom headers kept: " + names.join(", ") : "";
      shown = w;
      setEvents(w.enabled_events);
    } catch (error) {
      if (error.status !== 404) throw error;
      current.textContent = "No webhook is configured for this device.";
      current.dataset.scope = "none";
    }
  }

  async function save() {
    const body = { webhook_url: url.value.trim(), enabled: enabled.checked, enabled_events: checked() };
    if (retries.value !== "") body.retry_attempts = Number(retries.value);
    if (timeout.value !== "") body.timeout = Number(timeout.value);
    // Headers set through the API are not edited here: they are sent back as they are.
    if (shown && shown.scope === scope.value && shown.headers) body.headers = shown.headers;
    if (secret.value) body.secret = secret.value;
    secret.value = "";
    const { data } = scope.value === "user"
      ? await api("POST", "/user/webhook", body, opts)
      : await api("POST", "/webhook" + dev.query, body, opts);
    const generated = scope.value === "user" ? data.data && data.data.secret : data.webhook && data.webhook.secret;
    secretBox.replaceChildren();
    if (generated) {
      secretBox.append(h("div", { class: "secret", role: "status" },
        h("strong", { text: "Signing secret (shown once, copy it now):" }),
        h("p", { class: "mono", id: "webhook-secret-value", text: generated }),
        h("p", { class: "muted", text: "Deliveries carry webhook-signature (Standard Webhooks) made with it." })));
    }
    toast("Webhook saved");
    await loadConfig();
  }

  // Delivery log: newest first, a page at a time; the first page refreshes itself.
  const status = h("select", { id: "delivery-status" },
    ...["", "pending", "retrying", "delivered", "dead", "skipped"].map((s) => h("option", { value: s, text: s || "Any status" })));
  const rows = h("tbody", { id: "delivery-rows" });
  const empty = h("p", { class: "muted", id: "delivery-empty", hidden: true, text: "No deliveries yet." });
  const more = h("button", { type: "button", hidden: true, text: "Load more" });
  let next = null;
  let paged = false;

  async function loadLog(reset) {
    const query = new URLSearchParams({ limit: "50" });
    if (status.value) query.set("status", status.value);
    if (!reset && next) query.set("before", String(next));
    const { data } = await api("GET", "/webhook/deliveries" + dev.query + (dev.query ? "&" : "?") + query, undefined, opts);
    const made = data.deliveries.map((d) => deliveryRow(d, guard(logLine, async () => {
      const { data: answer } = await api("POST", "/webhook/deliveries/" + encodeURIComponent(d.id) + "/redeliver", undefined, opts);
      toast("Delivery " + answer.delivery.event + " queued again");
      paged = false;
      await loadLog(true);
    })));
    if (reset) rows.replaceChildren(...made);
    else rows.append(...made);
    next = data.next_before;
    more.hidden = !next;
    empty.hidden = rows.children.length > 0;
  }
  more.addEventListener("click", guard(logLine, async () => {
    paged = true;
    await loadLog(false);
  }));
  status.addEventListener("change", guard(logLine, async () => {
    paged = false;
    await loadLog(true);
  }));
  const timer = setInterval(() => {
    if (!paged) loadLog(true).catch((error) => (logLine.textContent = error.message));
  }, 3000);
  S.cleanups.push(() => clearInterval(timer));

  view.append(
    h("section", { class: "card", "aria-labelledby": "webhooks-title" },
      h("p", {}, h("a", { href: "#/device/" + encodeURIComponent(key), text: "← Device" })),
      h("h1", { id: "webhooks-title", text: "Webhooks" }),
      current,
      secretBox,
      h("form", { id: "webhook-form", on: { submit: guard(configLine, save) } },
        h("label", { for: "webhook-scope", text: "Applies to" }), scope,
        h("label", { for: "webhook-url", text: "URL" }), url,
        h("fieldset", {}, h("legend", { text: "Events" }), events,
          h("button", { type: "button", text: "All", on: { click: () => setEvents(S.eventNames || []) } }),
          h("button", { type: "button", text: "None", on: { click: () => setEvents([]) } })),
        h("div", { class: "row" },
          h("div", {}, h("label", { for: "webhook-retries", text: "Retry attempts" }), retries),
          h("div", {}, h("label", { for: "webhook-timeout", text: "Timeout (seconds)" }), timeout),
          h("label", { class: "inline" }, enabled, " Enabled")),
        kept,
        h("label", { for: "webhook-secret", text: "Signing secret" }), secret,
        h("button", { type: "submit", text: "Save webhook" })),
      configLine),
    h("section", { class: "card", "aria-labelledby": "deliveries-title" },
      h("h2", { id: "deliveries-title", text: "Delivery log" }),
      h("div", { class: "row" },
        h("div", {}, h("label", { for: "delivery-status", text: "Status" }), status),
        h("button", { type: "button", id: "delivery-refresh", text: "Refresh",
          on: { click: guard(logLine, async () => { paged = false; await loadLog(true); }) } })),
      logLine,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Event" }), h("th", { text: "Status" }), h("th", { text: "Attempts" }),
          h("th", { text: "Last answer" }), h("th", { class: "opt", text: "Next retry" }), h("th", { class: "opt", text: "When" }),
          h("th", { text: "Actions" }))),
        rows)),
      empty, more),
  );

  try {
    if (!S.eventNames) S.eventNames = (await api("GET", "/webhook/events", undefined, opts)).data.events;
    for (const name of S.eventNames) {
      events.append(h("label", { class: "inline check" },
        h("input", { type: "checkbox", value: name, class: "webhook-event", checked: true }), " ", h("span", { class: "mono", text: name })));
    }
    await loadConfig();
  } catch (error) {
    configLine.textContent = error.message;
  }
  await guard(logLine, () => loadLog(true))();
}
