// The console's community pages (loaded after app.js, devices.js and groups.js, whose helpers
// they use: h, api, guard, toast, deviceApi, pickDevice, fields, groupOf, details, roleOf). A device's
// communities (list, create) and one community (its groups with the announcement group marked,
// link and unlink, participants). Everything goes through the public API: /groups lists the
// communities (`is_community`), /communities/... changes them. Server text is only ever set as
// textContent.
"use strict";

const communityHref = (key, jid) => "#/community/" + encodeURIComponent(key) + "/" + encodeURIComponent(jid);

// Phone numbers typed one per line, or separated by commas or semicolons.
const phones = (text) => text.split(/[\n,;]+/).map((p) => p.trim()).filter(Boolean);

async function communitiesPage(view, key) {
  const dev = deviceApi(key);
  await pickDevice(dev, key).catch(() => {});
  const opts = { asUser: dev.asUser };
  const line = errorLine();
  const list = h("ul", { id: "community-list" });
  const opened = h("div", { id: "community-open" });
  const name = h("input", { id: "community-name", required: true, maxlength: "100" });
  const description = h("textarea", { id: "community-description" });

  async function load() {
    const { data } = await api("GET", "/groups" + dev.query, undefined, opts);
    const communities = (fields(data).groups || []).filter((g) => g.is_community);
    list.replaceChildren(...communities.map((c) => h("li", {},
      h("a", { href: communityHref(key, c.jid), text: c.name || "(no name)" }), " ",
      h("span", { class: "mono muted", text: c.jid }),
      c.members_count !== undefined ? h("span", { class: "muted", text: " · " + c.members_count + " members" }) : null)));
    if (!communities.length) list.append(h("li", { class: "muted", text: "This device is in no community yet." }));
  }

  view.append(h("section", { class: "card" },
    h("p", {}, h("a", { href: "#/device/" + encodeURIComponent(key), text: "← Device" })),
    h("h1", { text: "Communities" }),
    h("form", { id: "community-create", on: { submit: guard(line, async () => {
      const body = { name: name.value };
      if (description.value.trim()) body.description = description.value;
      const { data } = await api("POST", "/communities" + dev.query, body, opts);
      const community = fields(data).community || {};
      name.value = "";
      description.value = "";
      toast("Community created");
      await load();
      const news = community.announcement_group;
      opened.replaceChildren(
        h("h2", {}, h("a", { href: communityHref(key, community.jid || ""), text: community.name || "" })),
        details({ JID: community.jid, Description: community.description || "",
          "Announcement group": news ? news.jid : "(not read back)" }));
    }) } },
      h("label", { for: "community-name", text: "New community name" }), name,
      h("label", { for: "community-description", text: "Description (optional)" }), description,
      h("p", { class: "muted", text: "WhatsApp adds the community's announcement group, where only admins write." }),
      h("button", { type: "submit", text: "Create community" })),
    line,
    h("h2", { text: "Communities of this device" }),
    list, opened));
  await guard(line, load)();
}

// ---------- one community ----------

async function communityPage(view, key, jid) {
  const dev = deviceApi(key);
  await pickDevice(dev, key).catch(() => {});
  const opts = { asUser: dev.asUser };
  const q = dev.query;
  const base = "/communities/" + encodeURIComponent(jid);
  const line = errorLine();
  const groupsLine = errorLine();
  const title = h("h1", { id: "community-title", text: "Community" });
  const info = h("div", { id: "community-info" });
  const subgroups = h("tbody", { id: "subgroup-rows" });
  const choice = h("select", { id: "community-link-group", required: true });
  const people = h("tbody", { id: "community-participant-rows" });
  const toAdd = h("textarea", { id: "community-participants-add", placeholder: "+55 11 98888-0002, one per line" });

  // Per-participant outcomes of a change, as one readable line.
  const outcomes = (data, done) => {
    const refused = (fields(data).participants || []).filter((p) => p.status !== 200);
    return refused.length ? refused.map((p) => (p.phone_number || p.jid) + ": " + (p.reason || p.status)).join("; ") : done;
  };

  function participantRow(p) {
    const who = p.phone_number || p.jid;
    const role = roleOf(p);
    return h("tr", { "data-jid": p.jid, "data-role": role },
      h("td", { class: "mono", text: who }),
      h("td", { class: "role", text: role }),
      h("td", {}, role === "owner" ? null : h("button", { type: "button", class: "danger remove", text: "Remove", on: {
        click: guard(line, async () => {
          if (!confirm("Remove " + who + " from the community?")) return;
          const { data } = await api("DELETE", base + "/participants" + q, { participants: [p.jid] }, opts);
          toast(outcomes(data, who + " removed"));
          await loadCommunity();
        }) } })));
  }

  async function loadCommunity() {
    const { data } = await api("GET", "/groups/" + encodeURIComponent(jid) + q, undefined, opts);
    const c = groupOf(data);
    title.textContent = c.name || "(no name)";
    info.replaceChildren(details({
      JID: c.jid, Description: c.description || "", Owner: c.owner || "",
      Created: c.created_at ? new Date(c.created_at).toLocaleString() : "",
      Members: (c.participants || []).length,
    }));
    people.replaceChildren(...(c.participants || []).map(participantRow));
  }

  function subgroupRow(g) {
    return h("tr", { "data-jid": g.jid, "data-announcement": g.is_announcement ? "true" : "false" },
      h("td", {}, h("a", { href: groupHref(key, g.jid), text: g.name || "(no name)" }),
        g.is_announcement ? h("span", { class: "state announcement", text: "announcements" }) : null),
      h("td", { class: "mono opt", text: g.jid }),
      h("td", {}, g.is_announcement ? h("span", { class: "muted", text: "stays with the community" })
        : h("button", { type: "button", class: "danger unlink", text: "Unlink", on: { click: guard(groupsLine, async () => {
          if (!confirm("Unlink " + (g.name || g.jid) + " from the community? The group itself stays.")) return;
          await api("DELETE", base + "/groups/" + encodeURIComponent(g.jid) + q, undefined, opts);
          toast("Group unlinked");
          await loadGroups();
        }) } })));
  }

  // The community's groups, and the device's groups that could be linked: plain groups in no
  // community yet (WhatsApp checks the rest, e.g. that the device is an admin of the group).
  async function loadGroups() {
    const [linked, own] = await Promise.all([
      api("GET", base + "/groups" + q, undefined, opts),
      api("GET", "/groups" + q, undefined, opts),
    ]);
    const list = fields(linked.data).groups || [];
    subgroups.replaceChildren(...list.map(subgroupRow));
    if (!list.length) subgroups.append(h("tr", {}, h("td", { colspan: "3", class: "muted", text: "No groups yet." })));
    const inside = new Set(list.map((g) => g.jid));
    const free = (fields(own.data).groups || []).filter((g) => !g.is_community && !g.parent_jid && !inside.has(g.jid));
    choice.replaceChildren(...free.map((g) => h("option", { value: g.jid, text: (g.name || "(no name)") + " · " + g.jid })));
    if (!free.length) choice.append(h("option", { value: "", text: "No group of this device is free to link" }));
  }

  view.append(
    h("section", { class: "card" },
      h("p", {}, h("a", { href: "#/communities/" + encodeURIComponent(key), id: "communities-back", text: "← Communities" })),
      title, info, line),
    h("section", { class: "card", "aria-labelledby": "subgroups-title" },
      h("h2", { id: "subgroups-title", text: "Groups in this community" }),
      groupsLine,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Name" }), h("th", { class: "opt", text: "JID" }), h("th", { text: "" }))),
        subgroups)),
      h("form", { class: "row", id: "community-link-form", on: { submit: guard(groupsLine, async () => {
        if (!choice.value) return;
        await api("POST", base + "/groups" + q, { group_jid: choice.value }, opts);
        toast("Group linked");
        await loadGroups();
      }) } },
        h("div", {}, h("label", { for: "community-link-group", text: "Link one of this device's groups" }), choice),
        h("button", { type: "submit", text: "Link group" }))),
    h("section", { class: "card", "aria-labelledby": "community-participants-title" },
      h("h2", { id: "community-participants-title", text: "Participants" }),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Phone" }), h("th", { text: "Role" }), h("th", { text: "Actions" }))),
        people)),
      h("form", { id: "community-participants-form", on: { submit: guard(line, async () => {
        const { data } = await api("POST", base + "/participants" + q, { participants: phones(toAdd.value) }, opts);
        toast(outcomes(data, "Added"));
        toAdd.value = "";
        await loadCommunity();
      }) } },
        h("label", { for: "community-participants-add", text: "Add participants" }), toAdd,
        h("button", { type: "submit", text: "Add" }))),
  );
  await Promise.all([guard(line, loadCommunity)(), guard(groupsLine, loadGroups)()]);
}
