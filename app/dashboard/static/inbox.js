// LeadWarm dashboard: the conversation view's actions (take over, reply as a person, internal
// notes, hand back at a chosen step) and the lead page. Reads /api/v1 with the session cookie;
// writes send X-CSRF-Token. API text only ever goes into textContent (never innerHTML).
"use strict";

(function () {
  const { T, LANG, el, api, word, scoreReason } = window.LW;
  const POLL_MS = 2000;

  function when(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleString(LANG, { dateStyle: "short", timeStyle: "short" });
  }

  function fail(where, err) {
    if (err.message === "signed out") return;
    where.replaceChildren(el("span", { class: "error", role: "alert" }, T.error + T.colon + err.message));
  }

  function redraw() { document.dispatchEvent(new Event("lw:refresh")); }

  // ------------------------------------------------------------------ conversation actions
  function conversation() {
    const id = document.body.dataset.conversation;
    const user = document.body.dataset.user || "agent";
    const canReply = document.body.dataset.canReply === "1";
    const url = "/api/v1/conversations/" + encodeURIComponent(id);
    const notesList = document.getElementById("notes");
    const noteForm = document.getElementById("note-form");
    const noteStatus = document.getElementById("note-status");
    let timer = null;
    let stepsDrawn = false;
    let notesSeen = -1;

    function drawNotes(notes) {
      if (notes.length === notesSeen) return;
      notesSeen = notes.length;
      notesList.replaceChildren(...notes.map((n) =>
        el("li", { class: "note-item" },
          el("span", { class: "who" }, n.author + " · " + when(n.created_at)),
          el("span", { class: "text" }, n.text))));
      if (!notes.length) notesList.append(el("li", { class: "empty" }, T.nothing));
    }

    async function load() {
      clearTimeout(timer);
      try {
        const h = await api("GET", url + "/handling");
        const link = document.getElementById("lead-link");
        if (h.lead_id) { link.href = "/app/leads/" + encodeURIComponent(h.lead_id); link.hidden = false; }
        drawNotes(h.notes || []);
        if (canReply) {
          const handled = h.status === "handoff" && h.handoff && h.handoff.answered_by;
          document.getElementById("handling-status").textContent = handled
            ? T.taken_over_by + " (" + h.handoff.answered_by + ")"
            : h.status === "handoff" ? T.st_handoff : h.status === "closed" ? T.st_closed : T.bot_running;
          document.getElementById("takeover").hidden = Boolean(handled) || h.status === "closed";
          document.getElementById("handback").disabled = h.status !== "handoff";
          const select = document.getElementById("handback-step");
          if (!stepsDrawn && h.steps.length) {
            select.replaceChildren(...h.steps.map((s) => el("option", { value: s.id }, s.id + " (" + word("sty_", s.type) + ")")));
            stepsDrawn = true;
          }
          if (h.resume_step && document.activeElement !== select && !select.dataset.chosen) select.value = h.resume_step;
        }
      } catch (err) { fail(noteStatus, err); }
      timer = setTimeout(load, POLL_MS);
    }

    noteForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = noteForm.elements.text.value.trim();
      if (!text) return;
      try {
        await api("POST", url + "/notes", { text });
        noteForm.elements.text.value = "";
        noteStatus.textContent = T.saved;
        load();
      } catch (err) { fail(noteStatus, err); }
    });

    if (canReply) {
      const status = document.getElementById("reply-status");
      const form = document.getElementById("reply-form");
      const select = document.getElementById("handback-step");
      select.addEventListener("change", () => { select.dataset.chosen = "1"; });
      document.getElementById("takeover").addEventListener("click", async () => {
        try { await api("POST", url + "/takeover", {}); status.textContent = T.taken_over; load(); redraw(); }
        catch (err) { fail(status, err); }
      });
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const text = form.elements.text.value.trim();
        if (!text) return;
        try {
          await api("POST", url + "/messages", { text, author: user });
          form.elements.text.value = "";
          status.textContent = T.sent;
          load(); redraw();
        } catch (err) { fail(status, err); }
      });
      document.getElementById("handback-form").addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          await api("POST", url + "/handback", { step_id: select.value || null, by: user });
          delete select.dataset.chosen;
          status.textContent = T.handed_back;
          load(); redraw();
        } catch (err) { fail(status, err); }
      });
    }
    load();
  }

  // ------------------------------------------------------------------ the lead page
  function detail(e) {
    if (e.kind === "message") return (e.sender === "contact" ? T.from_contact : e.sender === "agent" ? T.from_agent : T.from_bot) + T.colon + (e.text || "") + (e.status ? " (" + (T["ms_" + e.status] || e.status) + ")" : "");
    if (e.kind === "handoff") return [word("hev_", e.event), T["by_" + e.by] || e.by, word("hr_", e.reason), e.step_id ? T.step + T.colon + e.step_id : "", e.note].filter(Boolean).join(" · ");
    if (e.kind === "score") {
      const r = scoreReason(e);
      return (e.points > 0 ? "+" : "") + e.points + " → " + e.score + " · " + r.reason + (r.evidence ? " " + T.quote_open + r.evidence + T.quote_close : "");
    }
    if (e.kind === "booking") return [word("bk_", e.status), e.title, when(e.start), word("cal_", e.provider), word("bkr_", e.reason)].filter(Boolean).join(" · ");
    if (e.kind === "sync") return [e.provider, word("syt_", e.type), word("sys_", e.status), word("sye_", e.error)].filter(Boolean).join(" · ");
    if (e.kind === "note") return e.author + T.colon + e.text;
    return "";
  }

  function lead() {
    const id = document.body.dataset.lead;
    const meta = document.getElementById("lead-meta");
    api("GET", "/api/v1/leads/" + encodeURIComponent(id) + "/overview").then((o) => {
      const l = o.lead;
      document.getElementById("lead-title").textContent = T.lead_of + " · " + (l.name || l.email || l.phone || l.id);
      meta.textContent = [l.email, l.phone, T["stage_" + l.stage] || l.stage, T.score + T.colon + o.score + " / 100", l.source].filter(Boolean).join(" · ");
      const slots = Object.entries(o.slots || {});
      document.getElementById("answers").replaceChildren(
        ...(slots.length ? slots.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]) : [el("dd", {}, T.nothing)]));
      const rows = o.timeline.map((e) => el("tr", { class: "k-" + e.kind },
        el("td", {}, when(e.at)), el("td", {}, T["k_" + e.kind] || e.kind), el("td", {}, word("chn_", e.channel)), el("td", { class: "text" }, detail(e))));
      if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", class: "empty" }, T.nothing)));
      document.querySelector("#timeline tbody").replaceChildren(...rows);
      const history = o.score_history.map((s) => {
        const r = scoreReason(s);
        return el("tr", {},
          el("td", {}, when(s.at)), el("td", { class: "num" }, (s.points > 0 ? "+" : "") + s.points), el("td", { class: "num" }, String(s.score)),
          el("td", {}, r.reason), el("td", {}, r.evidence));
      });
      if (!history.length) history.push(el("tr", {}, el("td", { colspan: "5", class: "empty" }, T.nothing)));
      document.querySelector("#score-history tbody").replaceChildren(...history);
      const convs = o.conversations.map((c) => el("li", {},
        el("a", { href: "/app/conversations/" + encodeURIComponent(c.id) }, word("chn_", c.channel) + " · " + c.playbook_id),
        " · " + (T["st_" + c.status] || c.status) + " · " + when(c.created_at)));
      document.getElementById("lead-conversations").replaceChildren(...(convs.length ? convs : [el("li", {}, T.nothing)]));
      const bookings = o.bookings.map((b) => el("li", {}, [when(b.start), b.title, word("bk_", b.status), word("cal_", b.provider)].filter(Boolean).join(" · ")));
      document.getElementById("bookings").replaceChildren(...(bookings.length ? bookings : [el("li", {}, T.nothing)]));
      const crm = o.crm.map((c) => el("li", {}, [c.provider || c.connection_id, word("crm_", c.status), c.synced_at ? T.last_sync + " " + when(c.synced_at) : "", c.last_error ? T.last_error + T.colon + c.last_error : ""].filter(Boolean).join(" · ")));
      document.getElementById("crm").replaceChildren(...(crm.length ? crm : [el("li", {}, T.nothing)]));
    }).catch((err) => fail(meta, err));
  }

  const pages = { conversation, lead };
  const page = pages[document.body.dataset.page];
  if (page) page();
})();
