// The WUTS console: a small single-page app over the gateway's own API.
// Rules kept throughout: text from the server is only ever set with textContent (never as
// HTML); no token is stored anywhere (the session is an HttpOnly cookie, the CSRF token lives
// in this script's memory); nothing is loaded from another origin.
"use strict";

const S = {
  role: null, // "admin" | "user"
  csrf: null,
  userId: null,
  name: null,
  features: null, // routes the gateway documents, from /openapi.json
  cleanups: [], // what to stop when the page changes (event streams, timers)
  eventNames: null, // webhook event names, from GET /webhook/events
};

// ---------- DOM helpers (text only) ----------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    } else if (key === "text") {
      node.textContent = String(value);
    } else if (key === "class") {
      node.className = value;
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 3000);
}

function stateBadge(state) {
  const known = ["connected", "pairing", "connecting", "error", "logged_out", "disconnected", "unpaired"];
  return h("span", { class: "state " + (known.includes(state) ? state : ""), text: state || "unknown" });
}

// ---------- API ----------

class ApiFailure extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

function describeError(data, status) {
  if (data && typeof data === "object") {
    const code = data.error_code || (data.code !== undefined ? String(data.code) : "");
    let text = data.error || data.message || "";
    if (typeof text === "object") text = JSON.stringify(text);
    const details = Array.isArray(data.details)
      ? data.details.map((d) => (d.field ? d.field + ": " : "") + (d.message || "")).join("; ")
      : "";
    return [code, text, details].filter(Boolean).join(" - ") || "HTTP " + status;
  }
  return "HTTP " + status;
}

async function api(method, path, body, options = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (S.csrf && method !== "GET") headers["X-CSRF-Token"] = S.csrf;
  if (options.asUser) headers["X-WUTS-User"] = options.asUser;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = text;
  }
  if (response.status === 401 && path !== "/console/session") showSignIn("Your session ended: sign in again.");
  if (!response.ok) throw new ApiFailure(describeError(data, response.status), response.status, data);
  return { data, headers: response.headers, status: response.status };
}

async function features() {
  if (S.features) return S.features;
  const found = new Set();
  try {
    const { data } = await api("GET", "/openapi.json");
    for (const [path, item] of Object.entries(data.paths || {})) {
      for (const method of Object.keys(item)) found.add(method.toUpperCase() + " " + path);
    }
  } catch (_) {
    // Without the document, only what exists today is offered.
  }
  S.features = found;
  return found;
}

const has = (route) => S.features && S.features.has(route);

// ---------- session ----------

function showSignIn(message) {
  cleanup();
  S.role = S.csrf = S.userId = null;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("view").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("token").focus();
}

function signedIn(session) {
  S.role = session.role;
  S.csrf = session.csrf;
  S.userId = session.user_id || null;
  S.name = session.name || null;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("nav-users").hidden = S.role !== "admin";
  $("sign-out").hidden = false;
  $("who").textContent = S.role === "admin" ? "Signed in as admin" : "Signed in as " + S.name;
  if (!location.hash || location.hash === "#/") {
    location.hash = S.role === "admin" ? "#/users" : "#/devices";
  } else {
    route();
  }
}

async function signIn(event) {
  event.preventDefault();
  const input = $("token");
  const token = input.value;
  input.value = ""; // the token leaves the page as soon as it is sent
  try {
    const { data } = await api("POST", "/console/session", { token });
    await features();
    signedIn(data);
  } catch (error) {
    $("sign-in-error").textContent =
      error.status === 401 ? "That token is not valid." : error.message;
  }
}

async function signOut() {
  try {
    await api("DELETE", "/console/session");
  } catch (_) {
    // Signed out either way.
  }
  location.hash = "";
  showSignIn("Signed out.");
}

// ---------- routing ----------

function cleanup() {
  for (const stop of S.cleanups.splice(0)) stop();
}

function route() {
  if (!S.role) return;
  cleanup();
  const view = $("view");
  view.textContent = "";
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  for (const link of document.querySelectorAll("#nav a")) link.removeAttribute("aria-current");
  const current = { users: "nav-users", devices: "nav-devices", device: "nav-devices", groups: "nav-devices",
    group: "nav-devices", communities: "nav-devices", community: "nav-devices", webhooks: "nav-devices" }[parts[0]];
  if (current) $(current).setAttribute("aria-current", "page");
  const page = {
    users: () => (S.role === "admin" ? usersPage(view) : devicesPage(view)),
    devices: () => devicesPage(view),
    device: () => devicePage(view, parts[1]),
    groups: () => groupsPage(view, parts[1]),
    group: () => groupPage(view, parts[1], parts[2]),
    communities: () => communitiesPage(view, parts[1]),
    community: () => communityPage(view, parts[1], parts[2]),
    webhooks: () => webhooksPage(view, parts[1]),
  }[parts[0]];
  (page || (() => devicesPage(view)))();
  $("main").focus({ preventScroll: true });
}

function errorLine() {
  return h("p", { class: "error", role: "alert" });
}

function guard(line, fn) {
  return async (event) => {
    if (event) event.preventDefault();
    line.textContent = "";
    try {
      await fn(event);
    } catch (error) {
      line.textContent = error.message;
    }
  };
}

// ---------- tenants and users (admin) ----------

function pager(load) {
  // A table body filled a page at a time; `load(cursor)` returns {rows, next}.
  const state = { next: null };
  const more = h("button", { type: "button", hidden: true, text: "Load more" });
  async function fill(tbody, reset) {
    if (reset) {
      tbody.textContent = "";
      state.next = null;
    }
    const { rows, next } = await load(reset ? null : state.next);
    for (const row of rows) tbody.append(row);
    state.next = next;
    more.hidden = !next;
  }
  return { more, fill };
}

function secretBox(title, user) {
  return h(
    "div",
    { class: "secret", role: "status" },
    h("strong", { text: title }),
    h("p", {}, "Token for ", h("span", { text: user.name }), " (shown once, copy it now):"),
    h("p", { class: "mono token-value", text: user.token }),
  );
}

async function usersPage(view) {
  const tenantsLine = errorLine();
  const usersLine = errorLine();
  const secret = h("div", { id: "secret" });
  let tenants = [];

  // Tenants
  const tenantSearch = h("input", { id: "tenant-search", type: "search", placeholder: "Search by name or id" });
  const tenantBody = h("tbody", { id: "tenant-rows" });
  const tenantPager = pager(async (cursor) => {
    const query = new URLSearchParams({ limit: "20" });
    if (tenantSearch.value.trim()) query.set("q", tenantSearch.value.trim());
    if (cursor) query.set("cursor", cursor);
    const { data, headers } = await api("GET", "/admin/tenants?" + query);
    return {
      rows: data.map((t) => h("tr", {}, h("td", { text: t.name }), h("td", { class: "mono opt", text: t.id }))),
      next: headers.get("x-next-cursor"),
    };
  });
  const tenantName = h("input", { id: "tenant-name", required: true, maxlength: "100" });
  const tenantSelect = h("select", { id: "user-tenant", required: true });
  const tenantFilter = h("select", { id: "tenant-filter" });

  async function loadTenantChoices() {
    const { data } = await api("GET", "/admin/tenants?limit=1000");
    tenants = data;
    for (const select of [tenantSelect, tenantFilter]) {
      const keep = select.value;
      select.textContent = "";
      if (select === tenantFilter) select.append(h("option", { value: "", text: "All tenants" }));
      for (const t of tenants) select.append(h("option", { value: t.id, text: t.name }));
      if (keep && tenants.some((t) => t.id === keep)) select.value = keep;
    }
  }

  // Users
  const userSearch = h("input", { id: "user-search", type: "search", placeholder: "Search by name or id" });
  const userBody = h("tbody", { id: "user-rows" });
  const tenantName_ = (id) => (tenants.find((t) => t.id === id) || { name: id }).name;
  const userPager = pager(async (cursor) => {
    const query = new URLSearchParams({ limit: "20" });
    if (userSearch.value.trim()) query.set("q", userSearch.value.trim());
    if (tenantFilter.value) query.set("tenant_id", tenantFilter.value);
    if (cursor) query.set("cursor", cursor);
    const { data, headers } = await api("GET", "/admin/users?" + query);
    return { rows: data.map(userRow), next: headers.get("x-next-cursor") };
  });

  function userRow(u) {
    const line = h("span", { class: "error" });
    return h(
      "tr",
      { "data-user": u.id },
      h("td", {}, h("a", { href: "#/device/" + encodeURIComponent(u.id), text: u.name })),
      h("td", { class: "opt", text: tenantName_(u.tenant_id) }),
      h("td", {}, stateBadge(u.state)),
      h(
        "td",
        {},
        h("button", {
          type: "button",
          text: "Rotate token",
          on: {
            click: guard(line, async () => {
              if (!confirm("Rotate the token of " + u.name + "? The old one stops working at once.")) return;
              const { data } = await api("POST", "/admin/users/" + encodeURIComponent(u.id) + "/token");
              secret.replaceChildren(secretBox("New token", data));
            }),
          },
        }),
        h("button", {
          type: "button",
          class: "danger",
          text: "Delete",
          on: {
            click: guard(line, async () => {
              if (!confirm("Delete " + u.name + "? The device is logged out and its keys wiped.")) return;
              await api("DELETE", "/admin/users/" + encodeURIComponent(u.id));
              toast("Deleted " + u.name);
              await userPager.fill(userBody, true);
            }),
          },
        }),
        line,
      ),
    );
  }

  const userName = h("input", { id: "user-name", required: true, maxlength: "100" });
  view.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "tenants-title" },
      h("h1", { id: "tenants-title", text: "Tenants" }),
      h(
        "form",
        { class: "row", id: "tenant-create", on: { submit: guard(tenantsLine, async () => {
          const { data } = await api("POST", "/admin/tenants", { name: tenantName.value });
          tenantName.value = "";
          toast("Tenant " + data.name + " created");
          await Promise.all([tenantPager.fill(tenantBody, true), loadTenantChoices()]);
        }) } },
        h("div", {}, h("label", { for: "tenant-name", text: "New tenant" }), tenantName),
        h("button", { type: "submit", text: "Create tenant" }),
      ),
      h(
        "form",
        { class: "row", on: { submit: guard(tenantsLine, () => tenantPager.fill(tenantBody, true)) } },
        h("div", {}, h("label", { for: "tenant-search", text: "Search tenants" }), tenantSearch),
        h("button", { type: "submit", text: "Search" }),
      ),
      tenantsLine,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Name" }), h("th", { class: "opt", text: "Id" }))),
        tenantBody)),
      tenantPager.more,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "users-title" },
      h("h1", { id: "users-title", text: "Users" }),
      secret,
      h(
        "form",
        { class: "row", id: "user-create", on: { submit: guard(usersLine, async () => {
          const { data } = await api("POST", "/admin/users", { tenant_id: tenantSelect.value, name: userName.value });
          userName.value = "";
          secret.replaceChildren(secretBox("User created", data));
          await userPager.fill(userBody, true);
        }) } },
        h("div", {}, h("label", { for: "user-tenant", text: "Tenant" }), tenantSelect),
        h("div", {}, h("label", { for: "user-name", text: "New user" }), userName),
        h("button", { type: "submit", text: "Create user" }),
      ),
      h(
        "form",
        { class: "row", on: { submit: guard(usersLine, () => userPager.fill(userBody, true)) } },
        h("div", {}, h("label", { for: "tenant-filter", text: "Tenant" }), tenantFilter),
        h("div", {}, h("label", { for: "user-search", text: "Search users" }), userSearch),
        h("button", { type: "submit", text: "Search" }),
      ),
      usersLine,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Name" }), h("th", { class: "opt", text: "Tenant" }),
          h("th", { text: "Device" }), h("th", { text: "Actions" }))),
        userBody)),
      userPager.more,
    ),
  );
  tenantPager.more.addEventListener("click", guard(tenantsLine, () => tenantPager.fill(tenantBody, false)));
  userPager.more.addEventListener("click", guard(usersLine, () => userPager.fill(userBody, false)));
  try {
    await loadTenantChoices();
    await Promise.all([tenantPager.fill(tenantBody, true), userPager.fill(userBody, true)]);
  } catch (error) {
    usersLine.textContent = error.message;
  }
}

// ---------- start ----------

document.addEventListener("DOMContentLoaded", async () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  try {
    const { data } = await api("GET", "/console/session");
    await features();
    signedIn(data);
  } catch (_) {
    showSignIn("");
  }
});
