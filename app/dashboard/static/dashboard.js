// LeadWarm dashboard: each page reads /api/v1 with the session cookie and draws itself.
// Writes send the session's CSRF token in X-CSRF-Token. Text from the API only ever goes into
// textContent (never innerHTML), so a lead's message cannot inject markup.
"use strict";

(function () {
  const { T, LANG, el, api, word, scoreReason } = window.LW;
  const POLL_MS = 2000;

  function when(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleString(LANG, { dateStyle: "short", timeStyle: "short" });
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " j/d";
  }

  function money(usd) {
    if (usd === null || usd === undefined) return "–";
    return new Intl.NumberFormat(LANG, { style: "currency", currency: "USD", maximumFractionDigits: 4 }).format(usd);
  }

  function percent(rate) {
    if (rate === null || rate === undefined) return "–";
    return new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 1 }).format(rate);
  }

  function formQuery(form) {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim()) params.set(k, String(v).trim());
    return params;
  }

  function replaceRows(tbody, rows, columns, emptyText) {
    const fresh = rows.map((row) => el("tr", {}, ...columns.map((col) => el("td", {}, col(row)))));
    if (!fresh.length) fresh.push(el("tr", {}, el("td", { colspan: String(columns.length), class: "empty" }, emptyText)));
    tbody.replaceChildren(...fresh);
  }

  function showError(where, err) {
    where.replaceChildren(el("span", { class: "error", role: "alert" }, T.error + T.colon + err.message));
  }

  // ------------------------------------------------------------------ inbox (live)
  function inbox() {
    const form = document.getElementById("filters");
    const tbody = document.querySelector("#inbox-table tbody");
    const summary = document.getElementById("inbox-summary");
    let timer = null;
    const params = new URLSearchParams(window.location.search);
    for (const [k, v] of params.entries()) if (form.elements[k]) form.elements[k].value = v;

    async function refresh() {
      clearTimeout(timer);
      try {
        const query = formQuery(form);
        const data = await api("GET", "/api/v1/inbox?" + query.toString());
        replaceRows(
          tbody,
          data.conversations,
          [
            (c) => el("a", { href: "/app/conversations/" + encodeURIComponent(c.id) }, c.lead_name || c.lead_id),
            (c) => el("span", { class: "badge st-" + c.status }, T["st_" + c.status] || c.status),
            (c) =>
              (c.waiting_s === null ? "" : duration(c.waiting_s)) + (c.call_back ? " · " + T.call_back_requested : ""),
            (c) => word("chn_", c.channel),
            (c) => c.playbook_id,
            (c) => String(c.score),
            (c) => when(c.updated_at),
          ],
          T.no_conversations,
        );
        tbody.querySelectorAll("tr").forEach((tr, i) => {
          const c = data.conversations[i];
          if (c && c.status === "handoff") tr.classList.add("handoff");
        });
        summary.textContent = T.handoffs_waiting + T.colon + data.handoffs + " · " + T.live;
      } catch (err) {
        if (err.message !== "signed out") showError(summary, err);
      }
      timer = setTimeout(refresh, POLL_MS);
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      history.replaceState(null, "", "?" + formQuery(form).toString());
      refresh();
    });
    api("GET", "/api/v1/playbooks").then((data) => {
      const ids = [...new Set((data.playbooks || []).map((p) => p.id))].sort();
      document.getElementById("playbook-ids").replaceChildren(...ids.map((id) => el("option", { value: id })));
    }).catch(() => {});
    refresh();
  }

  // ------------------------------------------------------------------ one conversation
  function conversation() {
    const id = document.body.dataset.conversation;
    const url = "/api/v1/conversations/" + encodeURIComponent(id);
    let timer = null;
    let lastCount = -1;

    function senderLabel(m) {
      return m.sender === "contact" ? T.from_contact : m.sender === "agent" ? T.from_agent : T.from_bot;
    }

    async function refresh() {
      clearTimeout(timer);
      try {
        const c = await api("GET", url);
        const lead = c.lead || {};
        document.getElementById("conv-title").textContent = T.conversation + " · " + (lead.name || c.address || c.id);
        document.getElementById("conv-meta").textContent = [
          T["st_" + c.status] || c.status, word("chn_", c.channel), c.playbook_id + " v" + c.playbook_version,
          T.step + T.colon + (c.current_step || "–"), T.model_cost + T.colon + money(c.cost_usd),
        ].join(" · ");
        const transcript = document.getElementById("transcript");
        if (c.messages.length !== lastCount) {
          transcript.replaceChildren(
            ...c.messages.map((m) =>
              el("li", { class: "msg " + m.direction + " from-" + m.sender },
                el("span", { class: "who" }, senderLabel(m) + " · " + when(m.created_at) + (m.status ? " · " + (T["ms_" + m.status] || m.status) : "")),
                el("span", { class: "text" }, m.text)),
            ),
          );
          if (!c.messages.length) transcript.append(el("li", { class: "empty" }, T.nothing));
          lastCount = c.messages.length;
        }
        const slots = Object.entries(c.slots || {});
        document.getElementById("slots").replaceChildren(
          ...(slots.length ? slots.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]) : [el("dd", {}, T.nothing)]),
        );
        document.getElementById("score").textContent = String(c.score) + " / 100";
        document.getElementById("reasons").replaceChildren(
          ...(c.score_reasons || []).map((r) =>
            el("li", {}, (r.points > 0 ? "+" : "") + (r.points ?? "") + " " + (scoreReason(r).reason || r.rule || JSON.stringify(r)))),
        );
        document.getElementById("decisions").replaceChildren(
          ...(c.delivery_decisions || []).map((d) =>
            el("li", {}, [
              word("chn_", d.channel), word("ob_", d.status), word("act_", d.action), word("why_", d.reason),
              d.action === "defer" && d.until ? T.until + " " + when(d.until) : "",
              d.rerouted_from ? T.rerouted_from + " " + word("chn_", d.rerouted_from) + " (" + word("why_", d.rerouted_because) + ")" : "",
            ].filter(Boolean).join(" · "))),
        );
        if (!(c.delivery_decisions || []).length) document.getElementById("decisions").append(el("li", {}, T.nothing));
      } catch (err) {
        if (err.message !== "signed out") showError(document.getElementById("conv-meta"), err);
      }
      timer = setTimeout(refresh, POLL_MS);
    }

    // The actions (take over, reply, notes, hand back) are inbox.js's; it asks for a redraw.
    document.addEventListener("lw:refresh", () => refresh());
    refresh();
  }

  // ------------------------------------------------------------------ leads
  function leads() {
    const form = document.getElementById("filters");
    const tbody = document.querySelector("#leads-table tbody");
    const summary = document.getElementById("leads-summary");
    const exportLink = document.getElementById("export");

    async function refresh() {
      const query = formQuery(form);
      exportLink.href = "/api/v1/leads.csv?" + query.toString();
      try {
        const data = await api("GET", "/api/v1/leads?" + query.toString());
        replaceRows(
          tbody,
          data.leads,
          [
            (l) => el("a", { href: "/app/leads/" + encodeURIComponent(l.id) }, l.name || l.id), (l) => l.email || "", (l) => l.phone || "", (l) => T["stage_" + l.stage] || l.stage,
            (l) => String(l.score), (l) => l.source, (l) => (l.channels || []).join(", "), (l) => when(l.created_at),
          ],
          T.no_leads,
        );
        summary.textContent = data.total + (data.total_exact === false ? "+" : "") + " " + T.leads_found;
      } catch (err) {
        if (err.message !== "signed out") showError(summary, err);
      }
    }
    form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
    refresh();
  }

  // ------------------------------------------------------------------ analytics
  function analytics() {
    const root = document.getElementById("playbooks");
    api("GET", "/api/v1/analytics/playbooks").then((data) => {
      if (!data.playbooks.length) { root.replaceChildren(el("p", {}, T.no_playbooks)); return; }
      root.replaceChildren(...data.playbooks.map((p) => {
        const headingId = "pb-" + p.playbook_id;
        const top = Math.max(1, ...p.funnel.map((s) => s.reached));
        const stats = [
          [T.conversations_started, String(p.conversations)],
          [T.qualification_rate, percent(p.qualification_rate)],
          [T.average_score, p.average_score === null ? "–" : p.average_score.toLocaleString(LANG, { minimumFractionDigits: 1, maximumFractionDigits: 1 })],
          [T.handoffs, String(p.handoffs)],
          [T.model_cost, money(p.cost_usd) + " (" + money(p.cost_per_conversation_usd) + " " + T.per_conversation + ", " + money(p.cost_per_qualified_usd) + " " + T.per_qualified + ")"],
        ];
        const rows = p.funnel.map((s) => {
          const bar = el("progress", { max: String(top), value: String(s.reached), "aria-label": s.step_id + T.colon + s.reached });
          return el("tr", { "data-step": s.step_id },
            el("th", { scope: "row" }, s.step_id), el("td", { class: "num reached" }, String(s.reached)),
            el("td", { class: "num" }, s.drop_off ? "−" + s.drop_off : "0"), el("td", {}, bar));
        });
        return el("section", { class: "card playbook", "aria-labelledby": headingId, "data-playbook": p.playbook_id },
          el("h2", { id: headingId }, p.name + " (" + p.playbook_id + " v" + p.version + ")"),
          el("dl", { class: "stats" }, ...stats.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
          el("table", { class: "grid funnel" },
            el("caption", {}, T.funnel),
            el("thead", {}, el("tr", {}, el("th", { scope: "col" }, T.step), el("th", { scope: "col", class: "num" }, T.reached),
              el("th", { scope: "col", class: "num" }, T.drop_off), el("th", { scope: "col" }, T.funnel))),
            el("tbody", {}, ...rows)));
      }));
    }).catch((err) => { if (err.message !== "signed out") showError(root, err); });
  }

  // ------------------------------------------------------------------ people
  function people() {
    const tbody = document.querySelector("#people-table tbody");
    function load() {
      api("GET", "/api/v1/users").then((data) => {
        replaceRows(tbody, data.users, [(u) => u.email, (u) => u.name || "", (u) => T["role_" + u.role] || u.role], T.nothing);
      }).catch((err) => showError(tbody, err));
    }
    const form = document.getElementById("invite-form");
    if (form) {
      const result = document.getElementById("invite-result");
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          const data = await api("POST", "/api/v1/invitations", { email: form.elements.email.value, role: form.elements.role.value });
          if (data.sent) result.replaceChildren(el("p", {}, T.invite_sent + " " + data.email));
          else result.replaceChildren(el("p", {}, T.invite_link + ":"), el("p", {}, el("input", { class: "link", readonly: "readonly", "aria-label": T.invite_link, value: data.link })));
          form.reset();
        } catch (err) { showError(result, err); }
      });
    }
    load();
  }

  const pages = { inbox, conversation, leads, analytics, people };
  const page = pages[document.body.dataset.page];
  if (page) page();
})();
