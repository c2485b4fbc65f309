// LeadWarm dashboard, playbook pages: the list with versions and routing rules, the YAML editor with
// live validation (the loader's line: message shown at the line) and schema completion, publish and
// activate, and the simulator (a sandboxed conversation; the page keeps the session the API returns).
// Text from the API only ever goes into textContent (never innerHTML).
"use strict";

(function () {
  const { T, LANG, el, call, api, word, scoreReason } = window.LW;
  const VALIDATE_DELAY_MS = 350;

  function when(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleString(LANG, { dateStyle: "medium", timeStyle: "short" });
  }

  function showError(where, err) {
    if (err.message === "signed out") return;
    where.replaceChildren(el("span", { class: "error", role: "alert" }, T.error + T.colon + err.message));
  }

  function csv(value) {
    return String(value || "").split(",").map((s) => s.trim()).filter(Boolean);
  }

  // ------------------------------------------------------------------ the list and the routing rules
  function playbooksList() {
    const tbody = document.querySelector("#pb-table tbody");
    const status = document.getElementById("pb-list-status");
    const rulesList = document.getElementById("rules");
    const defaultSelect = document.getElementById("default-playbook");
    const routesStatus = document.getElementById("routes-status");
    let ids = [];
    let routes = { rules: [], default_playbook: null };
    let nextRule = 0;

    function playbookSelect(id, label, value, allowNone) {
      const select = el("select", { id, name: "playbook_id" });
      if (allowNone) select.append(el("option", { value: "" }, "–"));
      for (const pid of ids) select.append(el("option", { value: pid, selected: pid === value ? "selected" : null }, pid));
      return [el("label", { for: id }, label), select];
    }

    function ruleItem(rule) {
      const n = nextRule++;
      const field = (key, label, value, attrs) => {
        const id = "rule-" + n + "-" + key;
        return el("p", {}, el("label", { for: id }, label), el("input", { id, name: key, value: value || "", ...(attrs || {}) }));
      };
      const trigger = el("select", { id: "rule-" + n + "-trigger", name: "trigger" },
        ...[["", T.routes_any], ["inbound_unknown_lead", "inbound_unknown_lead"], ["lead_created", "lead_created"]].map(
          ([v, label]) => el("option", { value: v, selected: (rule.trigger || "") === v ? "selected" : null }, label)));
      const li = el("li", { class: "rule card" },
        field("name", T.routes_name, rule.name, { maxlength: "200" }),
        el("p", {}, ...playbookSelect("rule-" + n + "-playbook", T.routes_playbook, rule.playbook_id, false)),
        el("p", {}, el("label", { for: "rule-" + n + "-trigger" }, T.routes_trigger), trigger),
        field("channels", T.routes_channels, (rule.channels || []).join(", ")),
        field("languages", T.routes_languages, (rule.languages || []).join(", ")),
        field("keywords", T.routes_keywords, (rule.keywords || []).join(", ")),
        field("source", T.routes_source, rule.source, { maxlength: "100" }),
        el("p", {}, el("button", { type: "button", class: "remove" }, T.routes_remove)));
      li._rule = rule; // fields the form does not show (utm, referral) are kept as they were
      li.querySelector("button.remove").addEventListener("click", () => { li.remove(); });
      return li;
    }

    function drawRoutes() {
      rulesList.replaceChildren(...routes.rules.map(ruleItem));
      defaultSelect.replaceChildren(el("option", { value: "" }, "–"),
        ...ids.map((pid) => el("option", { value: pid, selected: pid === routes.default_playbook ? "selected" : null }, pid)));
    }

    function drawTable(playbooks) {
      const byId = new Map();
      for (const p of playbooks) {
        if (!byId.has(p.id)) byId.set(p.id, []);
        byId.get(p.id).push(p);
      }
      ids = [...byId.keys()].sort();
      const rows = ids.map((pid) => {
        const versions = byId.get(pid).sort((a, b) => a.version - b.version);
        const latest = versions[versions.length - 1];
        const vlist = el("ul", { class: "versions" }, ...versions.map((v) => {
          const item = el("li", { "data-version": String(v.version) },
            "v" + v.version + " ", el("span", { class: "badge pb-" + v.status }, T["pb_status_" + v.status] || v.status),
            " " + when(v.updated_at));
          if (v.status !== "active") {
            const button = el("button", { type: "button", "aria-label": T.pb_activate + " " + pid + " v" + v.version }, T.pb_activate);
            button.addEventListener("click", async () => {
              try {
                await api("POST", "/api/v1/playbooks/" + encodeURIComponent(pid) + "/versions/" + v.version + "/activate", {});
                status.textContent = T.pb_activated + T.colon + pid + " v" + v.version;
                load();
              } catch (err) { showError(status, err); }
            });
            item.append(" ", button);
          }
          return item;
        }));
        const rules = routes.rules.map((r, i) => [r, i]).filter(([r]) => r.playbook_id === pid)
          .map(([r, i]) => el("li", {}, r.name || T.routes_rule + " " + (i + 1)));
        if (routes.default_playbook === pid) rules.push(el("li", {}, T.pb_default_only));
        return el("tr", { "data-playbook": pid },
          el("th", { scope: "row" }, latest.name, el("br"), el("code", {}, pid)),
          el("td", {}, vlist),
          el("td", {}, rules.length ? el("ul", { class: "routed" }, ...rules) : "–"),
          el("td", {}, el("a", {
            href: "/app/playbooks/editor?id=" + encodeURIComponent(pid) + "&version=" + latest.version,
            "aria-label": T.pb_edit + " " + pid,
          }, T.pb_edit)));
      });
      if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", class: "empty" }, T.pb_none)));
      tbody.replaceChildren(...rows);
    }

    async function load() {
      try {
        const [list, r] = await Promise.all([api("GET", "/api/v1/playbooks"), api("GET", "/api/v1/playbook-routes")]);
        routes = r;
        drawTable(list.playbooks || []);
        drawRoutes();
      } catch (err) { showError(status, err); }
    }

    document.getElementById("add-rule").addEventListener("click", () => {
      const li = ruleItem({ playbook_id: ids[0] || "" });
      rulesList.append(li);
      li.querySelector("input").focus();
    });

    document.getElementById("routes-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const rules = [...rulesList.children].map((li) => {
        const get = (name) => li.querySelector('[name="' + name + '"]').value.trim();
        const rule = { ...li._rule };
        rule.playbook_id = get("playbook_id");
        rule.name = get("name") || null;
        rule.trigger = get("trigger") || null;
        rule.channels = csv(get("channels"));
        rule.languages = csv(get("languages"));
        rule.keywords = csv(get("keywords"));
        rule.source = get("source") || null;
        return rule;
      });
      const r = await call("PUT", "/api/v1/playbook-routes", { rules, default_playbook: defaultSelect.value || null });
      if (r.ok) {
        routesStatus.textContent = T.routes_saved;
        load();
      } else if (r.data.errors) {
        routesStatus.replaceChildren(el("span", { class: "error", role: "alert" },
          r.data.errors.map((e) => e.field + T.colon + e.reason).join(" · ")));
      } else {
        showError(routesStatus, new Error(r.data.detail || String(r.status)));
      }
    });
    load();
  }

  // ------------------------------------------------------------------ the editor
  function editor() {
    const source = document.getElementById("source");
    const gutter = document.getElementById("gutter");
    const backdrop = document.getElementById("backdrop");
    const status = document.getElementById("pb-status");
    const issuesList = document.getElementById("pb-issues");
    const completions = document.getElementById("completions");
    const publishStatus = document.getElementById("publish-status");
    let issues = [];
    let timer = null;
    let validated = null; // the text the last answer was about
    let lastValid = false;
    let schema = null;
    let seq = 0;

    // --- gutter, error layer and problem list
    function issuesByLine() {
      const map = new Map();
      for (const issue of issues) {
        if (!map.has(issue.line)) map.set(issue.line, []);
        map.get(issue.line).push(issue.message);
      }
      return map;
    }

    function draw() {
      const lines = source.value.split("\n");
      const byLine = issuesByLine();
      gutter.replaceChildren(...lines.map((_, i) => {
        const messages = byLine.get(i + 1);
        return el("div", { class: messages ? "n err" : "n", "data-line": String(i + 1), title: messages ? messages.join("\n") : null }, String(i + 1));
      }));
      backdrop.replaceChildren(...lines.map((text, i) => {
        const messages = byLine.get(i + 1);
        const row = el("div", { class: messages ? "l err" : "l", "data-line": String(i + 1) }, el("span", { class: "t" }, text || " "));
        if (messages) row.append(el("span", { class: "m" }, "  ◀ " + messages.join(" · ")));
        return row;
      }));
      syncScroll();
    }

    function drawIssues() {
      issuesList.replaceChildren(...issues.map((issue) => {
        const button = el("button", { type: "button", class: "link" },
          (issue.line ? T.pb_line + " " + issue.line + T.colon : "") + issue.message);
        button.addEventListener("click", () => goToLine(issue.line));
        return el("li", { "data-line": String(issue.line) }, button);
      }));
    }

    function syncScroll() {
      backdrop.scrollTop = source.scrollTop;
      backdrop.scrollLeft = source.scrollLeft;
      gutter.scrollTop = source.scrollTop;
    }

    function goToLine(line) {
      if (!line) return;
      const lines = source.value.split("\n");
      let offset = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
      source.focus();
      source.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
      const lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 20;
      source.scrollTop = Math.max(0, (line - 3) * lineHeight);
      syncScroll();
    }

    async function validate() {
      const text = source.value;
      const mine = ++seq;
      status.textContent = T.pb_checking;
      try {
        const result = await api("POST", "/api/v1/playbooks/validate", { source: text, language: LANG });
        if (mine !== seq) return; // a newer check is on its way
        validated = text;
        lastValid = result.valid;
        issues = result.issues;
        status.className = "pb-status " + (result.valid ? "ok" : "bad");
        status.textContent = result.valid
          ? "✓ " + T.pb_valid + " · " + result.playbook.id + " v" + result.playbook.version
          : "✗ " + issues.length + " " + T.pb_problems;
        draw();
        drawIssues();
      } catch (err) { if (mine === seq) showError(status, err); }
    }

    function scheduleValidation() {
      clearTimeout(timer);
      timer = setTimeout(validate, VALIDATE_DELAY_MS);
    }

    source.addEventListener("input", () => { draw(); scheduleValidation(); hideCompletions(); });
    source.addEventListener("scroll", syncScroll);

    // --- completion from the JSON Schema (Ctrl+Space)
    function defOf(ref) { return schema.$defs[ref.split("/").pop()]; }

    function stepTypes() {
      return Object.keys(schema.properties.steps.items.discriminator.mapping);
    }

    function stepKeys(type) {
      const mapping = schema.properties.steps.items.discriminator.mapping;
      if (type && mapping[type]) return Object.keys(defOf(mapping[type]).properties);
      return ["id", "type"];
    }

    function currentStepType(lines, row) {
      // The step item holding `row`: the nearest "- " line above at the steps' indentation.
      for (let i = row; i >= 0; i--) {
        const item = /^(\s*)- /.exec(lines[i]);
        if (item) {
          const indent = item[1].length;
          for (let j = i; j < lines.length; j++) {
            if (j > i && (/^\s*- /.test(lines[j]) && lines[j].search(/\S/) <= indent || /^\S/.test(lines[j]))) break;
            const m = /^\s*(?:- )?type:\s*([\w-]+)/.exec(lines[j]);
            if (m) return m[1];
          }
          return null;
        }
        if (/^\S/.test(lines[i])) return null;
      }
      return null;
    }

    function suggestions() {
      const pos = source.selectionStart;
      const before = source.value.slice(0, pos);
      const lines = source.value.split("\n");
      const row = before.split("\n").length - 1;
      const head = before.slice(before.lastIndexOf("\n") + 1);
      let m = /^\s*(?:- )?type:\s*([\w-]*)$/.exec(head);
      if (m && /^\s/.test(head)) return { prefix: m[1], items: stepTypes(), suffix: "" };
      m = /^\s*kind:\s*([\w-]*)$/.exec(head);
      if (m) return { prefix: m[1], items: defOf("#/$defs/AskStep").properties.kind.enum, suffix: "" };
      m = /^(\s*)(- )?([\w-]*)$/.exec(head);
      if (!m) return null;
      const keyCol = m[1].length + (m[2] ? 2 : 0);
      const parent = keyCol === 0 ? null : parentKey(lines, row, keyCol);
      let keys = [];
      if (keyCol === 0) keys = Object.keys(schema.properties);
      else if (parent === "steps") keys = stepKeys(currentStepType(lines, row));
      else if (parent === "choices") keys = Object.keys(schema.$defs.Choice.properties);
      else if (parent === "whatsapp_template") keys = Object.keys(schema.$defs.WhatsAppTemplate.properties);
      return { prefix: m[3], items: keys, suffix: ": " };
    }

    // The key opening the block that holds a key at column `keyCol` of line `row` ("steps", "choices"...).
    function parentKey(lines, row, keyCol) {
      for (let i = row - 1; i >= 0; i--) {
        const text = lines[i];
        if (!text.trim() || /^\s*#/.test(text)) continue;
        const indent = text.search(/\S/);
        const opener = /^\s*(?:- )?([\w-]+):\s*$/.exec(text);
        if (indent < keyCol && opener) return opener[1];
        if (indent === 0) return null;
      }
      return null;
    }

    function hideCompletions() {
      completions.hidden = true;
      completions.replaceChildren();
      source.removeAttribute("aria-activedescendant");
    }

    function choose(option) {
      const { prefix, suffix } = completions._context;
      const pos = source.selectionStart;
      const text = option.dataset.value + suffix;
      source.setRangeText(text, pos - prefix.length, pos, "end");
      hideCompletions();
      source.focus();
      draw();
      scheduleValidation();
    }

    function select(index) {
      const options = [...completions.children];
      options.forEach((o, i) => o.setAttribute("aria-selected", i === index ? "true" : "false"));
      completions._index = index;
      if (options[index]) source.setAttribute("aria-activedescendant", options[index].id);
    }

    async function complete() {
      if (!schema) schema = await api("GET", "/api/v1/playbooks/schema");
      const context = suggestions();
      if (!context) return hideCompletions();
      const items = context.items.filter((k) => k.startsWith(context.prefix));
      if (!items.length) return hideCompletions();
      completions._context = context;
      completions.replaceChildren(...items.map((k, i) => {
        const option = el("li", { role: "option", id: "completion-" + i, "data-value": k, "aria-selected": "false" }, k);
        option.addEventListener("mousedown", (event) => { event.preventDefault(); choose(option); });
        return option;
      }));
      completions.hidden = false;
      select(0);
    }

    source.addEventListener("keydown", (event) => {
      if (event.ctrlKey && (event.key === " " || event.code === "Space")) {
        event.preventDefault();
        complete().catch((err) => showError(status, err));
        return;
      }
      if (!completions.hidden) {
        const count = completions.children.length;
        if (event.key === "ArrowDown") { event.preventDefault(); select((completions._index + 1) % count); }
        else if (event.key === "ArrowUp") { event.preventDefault(); select((completions._index - 1 + count) % count); }
        else if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); choose(completions.children[completions._index]); }
        else if (event.key === "Escape") { event.preventDefault(); hideCompletions(); }
        return;
      }
      if (event.key === "Tab" && !event.shiftKey && !event.altKey) {
        // Two spaces (YAML indents with spaces); Escape then Tab leaves the editor.
        if (source._escaped) { source._escaped = false; return; }
        event.preventDefault();
        source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
        draw();
        scheduleValidation();
      }
      source._escaped = event.key === "Escape";
    });
    // later (a click on an option lands first), and only if the editor is still left: a blur
    // followed by a quick return must not hide the list opened since
    source.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== source) hideCompletions(); }, 150));

    // --- publish and activate
    document.getElementById("bump").addEventListener("click", () => {
      source.value = source.value.replace(/^version:\s*(\d+)\s*$/m, (_, n) => "version: " + (Number(n) + 1));
      draw();
      validate();
    });

    document.getElementById("publish").addEventListener("click", async () => {
      clearTimeout(timer);
      await validate();
      if (!lastValid) { publishStatus.replaceChildren(el("span", { class: "error", role: "alert" }, T.pb_fix_first)); return; }
      try {
        const r = await call("POST", "/api/v1/playbooks", source.value, true);
        if (r.status === 409) { publishStatus.replaceChildren(el("span", { class: "error", role: "alert" }, T.pb_exists)); return; }
        if (!r.ok) throw new Error(r.data.detail || r.data.error || String(r.status));
        let stored = r.data;
        if (document.getElementById("activate-too").checked && stored.status !== "active") {
          stored = await api("POST", "/api/v1/playbooks/" + encodeURIComponent(stored.id) + "/versions/" + stored.version + "/activate", {});
        }
        publishStatus.replaceChildren(el("span", { class: "ok" },
          T.pb_published + T.colon + stored.id + " v" + stored.version + " (" + (T["pb_status_" + stored.status] || stored.status) + ") · "),
          el("a", { href: "/app/playbooks" }, T.routes_title));
      } catch (err) { showError(publishStatus, err); }
    });

    // --- the simulator
    const feed = document.getElementById("sim-feed");
    const simLang = document.getElementById("sim-lang");
    let session = null;
    let reasons = [];
    let simZone = null; // the tenant's zone: simulated times read as the lead's clock would show them

    function simWhen(epoch) {
      if (!epoch) return "";
      try {
        return new Date(epoch * 1000).toLocaleString(LANG, { dateStyle: "medium", timeStyle: "short", timeZone: simZone || undefined });
      } catch (err) {
        return when(epoch); // a zone this browser does not know: its own
      }
    }

    function line(kind, who, text, extra, more) {
      return el("li", { class: "ev ev-" + kind }, el("span", { class: "who" }, who), el("span", { class: "text" }, text), extra || null, more || null);
    }

    // A bot message the tenant's sending rules (quiet hours, daily cap) would not let out at once.
    function held(e) {
      if (!e.policy) return null;
      const why = T["sim_policy_" + e.policy] || e.policy;
      const text = e.held_until ? T.sim_held_until + " " + simWhen(e.held_until) + " (" + why + ")" : T.sim_blocked + " (" + why + ")";
      return el("span", { class: "held" }, text);
    }

    // A reply button the lead could tap: sends its id (and title) as the lead's answer.
    function choiceButton(choice) {
      const button = el("button", { type: "button", class: "choice" }, choice.title);
      button.addEventListener("click", () => {
        if (session) act({ kind: "say", text: choice.title, choice_id: choice.id }, false).catch((err) => showError(feed, err));
      });
      return button;
    }

    function feedItem(e) {
      switch (e.kind) {
        case "lead": return line("lead", T.sim_lead + " · " + simWhen(e.at), e.text);
        case "bot": return line(e.policy ? "bot held" : "bot", T.sim_bot + " · " + simWhen(e.at), e.text,
          e.choices.length ? el("span", { class: "choices" }, ...e.choices.map((c) => choiceButton(c))) : null, held(e));
        case "slot": return line("slot", T.sim_slot, e.slot + " = " + (typeof e.value === "object" ? JSON.stringify(e.value) : String(e.value)));
        case "score": return line("score", T.score, (e.points > 0 ? "+" : "") + e.points + " " + scoreReason(e).reason + " → " + e.score);
        case "qualified": return line("mark", "★", T.sim_qualified + " (" + e.score + ")");
        case "timer": return line("timer", "•", T.sim_timer_set + " " + simWhen(e.due_at) + " (" + e.step_id + ")");
        case "timer_fired": return line("timer", "•", T.sim_timer_fired + " · " + simWhen(e.at) + " (" + e.step_id + ")");
        case "clock": return line("clock", "•", T.sim_clock_moved + " " + simWhen(e.at));
        case "handoff": return line("mark", "•", T.sim_handoff + T.colon + word("hr_", e.reason));
        case "ended": return line("mark", "■", T.sim_ended + T.colon + word("stage_", e.outcome));
        case "booked": return line("mark", "•", T.sim_booked + " " + simWhen(e.value.start));
        case "opt_out": return line("mark", "•", T.sim_opt_out);
        default: return line("note", T.sim_note, e.text || e.kind);
      }
    }

    function drawState(r) {
      document.getElementById("sim-now").textContent = simWhen(r.session.now) + (simZone ? " (" + simZone + ")" : "");
      document.getElementById("sim-timer").textContent = r.timer_due_at ? simWhen(r.timer_due_at) : T.sim_no_timer;
      const slots = Object.entries(r.slots || {});
      document.getElementById("sim-slots").replaceChildren(
        ...slots.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]));
      document.getElementById("sim-slots-empty").hidden = slots.length > 0;
      document.getElementById("sim-score").textContent = r.score + " / 100" + (r.qualified ? " ★" : "");
      document.getElementById("sim-reasons").replaceChildren(...reasons.map((e) =>
        el("li", {}, (e.points > 0 ? "+" : "") + e.points + " " + scoreReason(e).reason)));
      document.getElementById("sim-state").textContent = T.sim_state + T.colon + word("sst_", r.status) + (r.current_step ? " · " + T.step + " " + r.current_step : "");
    }

    async function act(action, fresh) {
      const body = { source: source.value, session: fresh ? null : session, session_language: simLang.value, language: LANG, action };
      const r = await call("POST", "/api/v1/playbooks/simulate", body);
      if (!r.ok) {
        const message = r.data.issues
          ? r.data.issues.map((i) => T.pb_line + " " + i.line + T.colon + i.message).join(" · ")
          : r.data.detail || String(r.status);
        feed.append(el("li", { class: "ev ev-error" }, el("span", { role: "alert" }, T.error + T.colon + message)));
        return;
      }
      const result = r.data;
      if (fresh) { feed.replaceChildren(); reasons = []; }
      session = result.session;
      simZone = result.timezone || null;
      for (const e of result.events) {
        feed.append(feedItem(e));
        if (e.kind === "score") reasons.push(e);
      }
      feed.scrollTop = feed.scrollHeight;
      drawState(result);
      document.getElementById("sim-start-button").textContent = T.sim_restart;
    }

    document.getElementById("sim-start").addEventListener("submit", (event) => {
      event.preventDefault();
      const first = document.getElementById("sim-first").value.trim();
      act({ kind: "start", text: first || null }, true).catch((err) => showError(feed, err));
    });
    document.getElementById("sim-say").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("sim-text");
      const text = input.value.trim();
      if (!text) return;
      if (!session) {
        act({ kind: "start", text }, true).catch((err) => showError(feed, err));
      } else {
        act({ kind: "say", text }, false).catch((err) => showError(feed, err));
      }
      input.value = "";
    });
    for (const button of document.querySelectorAll("[data-advance]")) {
      button.addEventListener("click", () => {
        if (!session) return;
        act({ kind: "advance", seconds: Number(button.dataset.advance) }, false).catch((err) => showError(feed, err));
      });
    }

    // --- the text to start from: a stored version, else a starter in the page's language
    async function open() {
      const id = document.body.dataset.playbook;
      const version = document.body.dataset.version;
      if (id && version) {
        try {
          const stored = await api("GET", "/api/v1/playbooks/" + encodeURIComponent(id) + "/versions/" + version);
          source.value = stored.source;
        } catch (err) { showError(status, err); }
      } else {
        const starters = JSON.parse(document.getElementById("pb-starters").textContent);
        source.value = starters[LANG] || starters.en;
      }
      draw();
      validate();
    }
    open();
  }

  const pages = { playbooks: playbooksList, "playbook-editor": editor };
  const page = pages[document.body.dataset.page];
  if (page) page();
})();
