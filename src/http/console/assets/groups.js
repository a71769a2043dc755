// The console's group pages (loaded after app.js and devices.js, whose helpers they use): a
// device's groups (list, create) and one group (participants, settings, invite link, disappearing
// messages, join requests, leave). Server text is only ever set as textContent.
"use strict";

// The fields of a group answer in either response style: `{success, ...}` or
// `{status, code, message, data: {...}}`.
function fields(data) {
  if (data && typeof data === "object" && data.status === true && data.data) return data.data;
  return data || {};
}

function groupOf(data) {
  const f = fields(data);
  return f.group || f;
}

function details(object) {
  const list = h("dl", { class: "group-details" });
  for (const [key, value] of Object.entries(object || {})) {
    if (value === null || value === undefined || typeof value === "object") continue;
    list.append(h("dt", { text: key }), h("dd", { text: String(value) }));
  }
  return list;
}

const groupHref = (key, jid) => "#/group/" + encodeURIComponent(key) + "/" + encodeURIComponent(jid);

async function groupsPage(view, key) {
  const dev = deviceApi(key);
  await pickDevice(dev, key).catch(() => {});
  const opts = { asUser: dev.asUser };
  const line = errorLine();
  const list = h("ul", { id: "group-list" });
  const opened = h("div", { id: "group-open" });
  const name = h("input", { id: "group-name", required: true, maxlength: "100" });
  const members = h("textarea", { id: "group-participants", placeholder: "+55 11 98888-0001, one per line" });

  const item = (g) => h("li", {},
    h("a", { href: groupHref(key, g.jid), text: g.name || "(no name)" }), " ",
    h("span", { class: "mono muted", text: g.jid }),
    g.members_count !== undefined ? h("span", { class: "muted", text: " · " + g.members_count + " members" }) : null);

  async function load() {
    const { data } = await api("GET", "/groups" + dev.query, undefined, opts);
    const groups = fields(data).groups || [];
    list.replaceChildren(...groups.map(item));
    if (!groups.length) list.append(h("li", { class: "muted", text: "This device is in no group yet." }));
  }

  view.append(h("section", { class: "card" },
    h("p", {}, h("a", { href: "#/device/" + encodeURIComponent(key), text: "← Device" })),
    h("h1", { text: "Groups" }),
    h("form", { id: "group-create", on: { submit: guard(line, async () => {
      const participants = members.value.split(/[\n,;]+/).map((p) => p.trim()).filter(Boolean);
      const { data } = await api("POST", "/groups" + dev.query, { name: name.value, participants }, opts);
      const group = groupOf(data);
      name.value = "";
      members.value = "";
      toast("Group created");
      await load();
      opened.replaceChildren(h("h2", {}, h("a", { href: groupHref(key, group.jid || group.id || ""), text: group.name || group.subject || "" })),
        details(group));
    }) } },
      h("label", { for: "group-name", text: "New group name" }), name,
      h("label", { for: "group-participants", text: "Participants" }), members,
      h("button", { type: "submit", text: "Create group" })),
    line,
    h("h2", { text: "Groups of this device" }),
    list, opened));
  await guard(line, load)();
}

// ---------- one group ----------

const EPHEMERAL = [[0, "Off"], [86400, "24 hours"], [604800, "7 days"], [7776000, "90 days"]];

function roleOf(p) {
  return p.is_super_admin ? "owner" : p.is_admin ? "admin" : "member";
}

async function groupPage(view, key, jid) {
  const dev = deviceApi(key);
  await pickDevice(dev, key).catch(() => {});
  const opts = { asUser: dev.asUser };
  const base = "/groups/" + encodeURIComponent(jid);
  const q = dev.query;
  const line = errorLine();
  const title = h("h1", { id: "group-title", text: "Group" });
  const info = h("div", { id: "group-info" });
  const editName = h("input", { id: "group-edit-name", maxlength: "100" });
  const editDescription = h("textarea", { id: "group-edit-description" });
  const announce = h("input", { id: "group-announce", type: "checkbox" });
  const locked = h("input", { id: "group-locked", type: "checkbox" });
  const approval = h("input", { id: "group-join-approval", type: "checkbox" });
  const addMode = h("select", { id: "group-add-mode" },
    h("option", { value: "all_member", text: "Every member can add people" }),
    h("option", { value: "admin", text: "Only admins add people" }));
  const ephemeral = h("select", { id: "group-ephemeral" }, ...EPHEMERAL.map(([s, t]) => h("option", { value: String(s), text: t })));
  const invite = h("p", { class: "mono", id: "group-invite" });
  const people = h("tbody", { id: "participant-rows" });
  const toAdd = h("textarea", { id: "participants-add", placeholder: "+55 11 98888-0002, one per line" });
  const requests = h("tbody", { id: "request-rows" });
  const requestsLine = errorLine();
  let shown = {};

  function participantRow(p) {
    const who = p.phone_number || p.jid;
    const change = (action) => guard(line, async () => {
      if (action === "remove" && !confirm("Remove " + who + " from the group?")) return;
      const method = action === "remove" ? "DELETE" : "POST";
      const { data } = await api(method, base + "/participants" + q, { participants: [p.jid], action }, opts);
      const outcome = (fields(data).participants || [])[0] || {};
      toast(outcome.status === 200 ? who + ": " + action + " done" : who + ": " + (outcome.reason || "refused"));
      await load();
    });
    const role = roleOf(p);
    return h("tr", { "data-jid": p.jid, "data-role": role },
      h("td", { class: "mono", text: who }),
      h("td", { class: "role", text: role }),
      h("td", {},
        role === "member" ? h("button", { type: "button", class: "promote", text: "Make admin", on: { click: change("promote") } }) : null,
        role === "admin" ? h("button", { type: "button", class: "demote", text: "Remove admin", on: { click: change("demote") } }) : null,
        role !== "owner" ? h("button", { type: "button", class: "danger remove", text: "Remove", on: { click: change("remove") } }) : null));
  }

  function show(g) {
    shown = g;
    title.textContent = g.name || "(no name)";
    info.replaceChildren(details({
      JID: g.jid, Description: g.description || "", Owner: g.owner || "",
      Created: g.created_at ? new Date(g.created_at).toLocaleString() : "",
      Members: (g.participants || []).length,
      "Only admins send messages": g.is_announce ? "yes" : "no",
      "Only admins edit settings": g.is_locked ? "yes" : "no",
      "Admins approve new members": g.join_approval ? "yes" : "no",
      "Who adds members": { all_member: "every member", admin: "admins only" }[g.member_add_mode] || g.member_add_mode || "",
      "Disappearing messages": (EPHEMERAL.find(([s]) => s === (g.ephemeral_seconds || 0)) || [0, g.ephemeral_seconds + " s"])[1],
    }));
    editName.value = g.name || "";
    editDescription.value = g.description || "";
    announce.checked = !!g.is_announce;
    locked.checked = !!g.is_locked;
    approval.checked = !!g.join_approval;
    if (g.member_add_mode) addMode.value = g.member_add_mode;
    ephemeral.value = String(g.ephemeral_seconds || 0);
    people.replaceChildren(...(g.participants || []).map(participantRow));
  }

  async function load() {
    show(groupOf((await api("GET", base + q, undefined, opts)).data));
  }

  async function loadRequests() {
    requestsLine.textContent = "";
    try {
      const { data } = await api("GET", base + "/requests" + q, undefined, opts);
      const list = fields(data).requests || [];
      requests.replaceChildren(...list.map((r) => {
        const decide = (action) => guard(requestsLine, async () => {
          await api("POST", base + "/requests" + q, { action, participants: [r.jid] }, opts);
          toast((r.phone_number || r.jid) + ": " + action + "d");
          await Promise.all([loadRequests(), load()]);
        });
        return h("tr", { "data-jid": r.jid },
          h("td", { class: "mono", text: r.phone_number || r.jid }),
          h("td", { class: "opt", text: r.requested_at || "" }),
          h("td", {},
            h("button", { type: "button", class: "approve", text: "Approve", on: { click: decide("approve") } }),
            h("button", { type: "button", class: "danger reject", text: "Reject", on: { click: decide("reject") } })));
      }));
      if (!list.length) requests.append(h("tr", {}, h("td", { colspan: "3", class: "muted", text: "No pending requests." })));
    } catch (error) {
      requestsLine.textContent = error.message;
    }
  }

  // PATCH only what changed, so a member who may edit nothing can still save nothing.
  async function saveSettings() {
    const body = {};
    if (editName.value !== (shown.name || "")) body.name = editName.value;
    if (editDescription.value !== (shown.description || "")) body.description = editDescription.value;
    if (announce.checked !== !!shown.is_announce) body.announcement = announce.checked;
    if (locked.checked !== !!shown.is_locked) body.locked = locked.checked;
    if (approval.checked !== !!shown.join_approval) body.join_approval = approval.checked;
    if (shown.member_add_mode && addMode.value !== shown.member_add_mode) body.member_add_mode = addMode.value;
    if (!Object.keys(body).length) {
      toast("Nothing changed");
      return;
    }
    await api("PATCH", base + q, body, opts);
    toast("Group updated");
    await load();
  }

  const checkbox = (input, text) => h("label", { class: "inline" }, input, " ", text);
  view.append(
    h("section", { class: "card" },
      h("p", {}, h("a", { href: "#/groups/" + encodeURIComponent(key), id: "groups-back", text: "← Groups" })),
      title, info, line),
    h("section", { class: "card", "aria-labelledby": "participants-title" },
      h("h2", { id: "participants-title", text: "Participants" }),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Phone" }), h("th", { text: "Role" }), h("th", { text: "Actions" }))),
        people)),
      h("form", { id: "participants-add-form", on: { submit: guard(line, async () => {
        const participants = toAdd.value.split(/[\n,;]+/).map((p) => p.trim()).filter(Boolean);
        const { data } = await api("POST", base + "/participants" + q, { participants, action: "add" }, opts);
        const refused = (fields(data).participants || []).filter((p) => p.status !== 200);
        toast(refused.length ? refused.map((p) => (p.phone_number || p.jid) + ": " + (p.reason || p.status)).join("; ") : "Added");
        toAdd.value = "";
        await load();
      }) } },
        h("label", { for: "participants-add", text: "Add participants" }), toAdd,
        h("button", { type: "submit", text: "Add" }))),
    h("section", { class: "card", "aria-labelledby": "settings-title" },
      h("h2", { id: "settings-title", text: "Settings" }),
      h("form", { id: "group-settings", on: { submit: guard(line, saveSettings) } },
        h("label", { for: "group-edit-name", text: "Name" }), editName,
        h("label", { for: "group-edit-description", text: "Description" }), editDescription,
        checkbox(announce, "Only admins send messages"),
        checkbox(locked, "Only admins edit group settings"),
        checkbox(approval, "Admins approve new members"),
        h("label", { for: "group-add-mode", text: "Adding members" }), addMode,
        h("button", { type: "submit", text: "Save changes" })),
      h("form", { class: "row", id: "group-ephemeral-form", on: { submit: guard(line, async () => {
        await api("PUT", base + "/ephemeral" + q, { duration_seconds: Number(ephemeral.value) }, opts);
        toast("Disappearing messages updated");
        await load();
      }) } },
        h("div", {}, h("label", { for: "group-ephemeral", text: "Disappearing messages" }), ephemeral),
        h("button", { type: "submit", text: "Set" }))),
    h("section", { class: "card", "aria-labelledby": "invite-title" },
      h("h2", { id: "invite-title", text: "Invite link" }),
      invite,
      h("button", { type: "button", id: "invite-show", text: "Show link", on: { click: guard(line, async () => {
        invite.textContent = fields((await api("GET", base + "/invite" + q, undefined, opts)).data).invite_link || "";
      }) } }),
      h("button", { type: "button", id: "invite-reset", class: "danger", text: "Reset link", on: { click: guard(line, async () => {
        if (!confirm("Reset the invite link? The current one stops working.")) return;
        invite.textContent = fields((await api("POST", base + "/invite/reset" + q, undefined, opts)).data).invite_link || "";
        toast("Invite link reset");
      }) } })),
    h("section", { class: "card", "aria-labelledby": "requests-title" },
      h("h2", { id: "requests-title", text: "Join requests" }),
      requestsLine,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Phone" }), h("th", { class: "opt", text: "Asked" }), h("th", { text: "" }))),
        requests)),
      h("button", { type: "button", id: "requests-refresh", text: "Refresh", on: { click: loadRequests } })),
    h("section", { class: "card" },
      h("button", { type: "button", id: "group-leave", class: "danger", text: "Leave this group", on: { click: guard(line, async () => {
        if (!confirm("Leave this group? The device stops receiving its messages.")) return;
        await api("DELETE", base + "/leave" + q, undefined, opts);
        toast("Left the group");
        location.hash = "#/groups/" + encodeURIComponent(key);
      }) } })),
  );
  await guard(line, load)();
  await loadRequests();
}
