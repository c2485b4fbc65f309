// LeadWarm dashboard, admin pages: CSV import (progress + report), integrations, settings, and the
// funnel charts on the analytics page. Same rules as dashboard.js: data from /api/v1 with the
// session cookie, X-CSRF-Token on writes, API text only ever in textContent.
"use strict";

(function () {
  const { T, LANG, el, api, refusal, word } = window.LW;
  const POLL_MS = 400;

  function when(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleString(LANG, { dateStyle: "short", timeStyle: "short" });
  }

  function alertIn(where, message) {
    where.replaceChildren(el("span", { class: "error" }, T.error + T.colon + message));
  }

  function rowsOr(tbody, rows, columns, emptyText) {
    const fresh = rows.map((row) => el("tr", {}, ...columns.map((col) => {
      const value = col(row);
      return value instanceof Node && value.tagName === "TD" ? value : el("td", {}, value);
    })));
    if (!fresh.length) fresh.push(el("tr", {}, el("td", { colspan: String(columns.length), class: "empty" }, emptyText)));
    tbody.replaceChildren(...fresh);
  }

  // ------------------------------------------------------------------ CSV import
  function importPage() {
    const form = document.getElementById("import-form");
    const file = document.getElementById("imp-file");
    file.addEventListener("change", () => {
      document.getElementById("imp-file-name").textContent = file.files.length ? file.files[0].name : T.no_file;
    });
    const errorBox = document.getElementById("import-error");
    const status = document.getElementById("import-status");
    const bar = document.getElementById("import-progress");
    const state = document.getElementById("import-state");
    const counts = document.getElementById("import-counts");
    const report = document.getElementById("import-report");
    const playbooks = document.getElementById("imp-playbook");

    api("GET", "/api/v1/playbooks").then((data) => {
      const seen = new Set();
      for (const p of data.playbooks) {
        if (seen.has(p.id)) continue;
        seen.add(p.id);
        playbooks.append(el("option", { value: p.id }, (p.name || p.id) + " (" + p.id + ")"));
      }
    }).catch(() => {});

    function recent() {
      api("GET", "/api/v1/leads/imports").then((data) => {
        rowsOr(document.querySelector("#imports-table tbody"), data.imports, [
          (i) => when(i.created_at), (i) => i.filename, (i) => T["imp_" + i.status] || i.status,
          (i) => el("td", { class: "num" }, String(i.imported)), (i) => el("td", { class: "num" }, String(i.refused)),
        ], T.nothing);
      }).catch(() => {});
    }

    function show(imp) {
      const pct = Math.round(imp.progress * 100);
      bar.value = pct;
      bar.setAttribute("aria-valuetext", pct + "%");
      state.textContent = (imp.status === "done" ? T.import_done : T.import_running) + " — " +
        Math.min(imp.processed, imp.total_rows) + " / " + imp.total_rows + " " + T.rows_handled + " (" + pct + "%)";
      const items = [[T.imported, imp.imported], [T.refused, imp.refused]];
      if (imp.playbook_id) items.push([T.started, imp.started], [T.not_started, imp.not_started]);
      counts.replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-count": k }, String(v))]));
    }

    function showReport(id) {
      api("GET", "/api/v1/leads/imports/" + encodeURIComponent(id) + "/report").then((data) => {
        report.hidden = false;
        rowsOr(document.querySelector("#report-table tbody"), data.refused, [
          (r) => el("td", { class: "num" }, String(r.line)),
          (r) => r.field,
          (r) => (T["code_" + r.code] || r.code) + " — " + r.reason,
          (r) => r.value || "",
        ], T.no_refused);
        recent();
      }).catch((err) => alertIn(errorBox, err.message));
    }

    function poll(id) {
      api("GET", "/api/v1/leads/imports/" + encodeURIComponent(id)).then((imp) => {
        show(imp);
        if (imp.status === "done") showReport(id);
        else window.setTimeout(() => poll(id), POLL_MS);
      }).catch((err) => alertIn(errorBox, err.message));
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      errorBox.replaceChildren();
      report.hidden = true;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      api("POST", "/api/v1/leads/imports", new FormData(form)).then((imp) => {
        status.hidden = false;
        show(imp);
        poll(imp.id);
      }).catch((err) => alertIn(errorBox, err.message)).finally(() => { button.disabled = false; });
    });
    recent();
  }

  // ------------------------------------------------------------------ integrations
  function integrationsPage() {
    const notice = document.getElementById("integrations-status");
    const panels = document.getElementById("crm-panels");
    let catalog = {};

    function say(text, ok) {
      notice.replaceChildren(el("span", { class: ok ? "ok" : "error" }, text));
    }

    function accountOf(c) {
      const a = c.account || {};
      return [a.name, a.email, a.company_name || a.location_id || a.portal_id || a.phone, c.label]
        .filter(Boolean).join(" · ") || c.id;
    }

    function connections() {
      api("GET", "/api/v1/integrations/configured").then((data) => {
        rowsOr(document.querySelector("#connections-table tbody"), data.integrations, [
          (c) => (catalog[c.provider] || {}).display_name || c.provider,
          (c) => el("span", { "data-account": c.id }, accountOf(c)),
          (c) => el("span", { class: "badge st-" + (c.status === "active" ? "active" : "closed") }, word("cst_", c.status)),
          (c) => {
            const name = (catalog[c.provider] || {}).display_name || c.provider;
            const test = el("button", { type: "button", "aria-label": T.test + " " + name }, T.test);
            test.addEventListener("click", () => {
              api("POST", "/api/v1/integrations/" + encodeURIComponent(c.id) + "/test").then((r) => {
                if (r.ok) { say(T.test_ok + T.colon + name + " — " + Object.values(r.account || {}).filter(Boolean).join(" · "), true); connections(); }
                else say(T.test_failed + T.colon + name + " — " + [word("tst_", r.error), r.message].filter(Boolean).join(" · "), false);
              }).catch((err) => say(T.test_failed + T.colon + err.message, false));
            });
            const off = el("button", { type: "button", "aria-label": T.disconnect + " " + name }, T.disconnect);
            off.addEventListener("click", () => {
              if (!window.confirm(T.confirm_disconnect)) return;
              api("DELETE", "/api/v1/integrations/" + encodeURIComponent(c.id)).then(() => {
                say(T.disconnect + T.colon + name, true);
                refresh();
              }).catch((err) => say(err.message, false));
            });
            return el("td", {}, test, " ", off);
          },
        ], T.no_connections);
      }).catch((err) => alertIn(notice, err.message));
    }

    function mappingEditor(conn, settings) {
      const id = conn.id;
      const tbody = el("tbody", {});
      function addRow(row) {
        const n = tbody.children.length + 1;
        const remove = el("button", { type: "button", "aria-label": T.remove + " " + n }, T.remove);
        const tr = el("tr", {},
          el("td", {}, el("input", { "aria-label": T.our_field + " " + n, name: "source", value: row.source || "" })),
          el("td", {}, el("input", { "aria-label": T.crm_property + " " + n, name: "target", value: row.target || "" })),
          el("td", {}, el("input", { "aria-label": T.transform + " " + n, name: "transform", value: row.transform || "text" })),
          el("td", {}, remove));
        remove.addEventListener("click", () => tr.remove());
        tbody.append(tr);
      }
      (settings.mapping || []).forEach(addRow);
      const add = el("button", { type: "button" }, T.add_row);
      add.addEventListener("click", () => addRow({}));
      const result = el("span", { role: "status", "aria-live": "polite" });
      const form = el("form", { class: "mapping-form", "data-connection": id },
        el("p", { class: "note" }, T.mapping_help),
        el("table", { class: "grid mapping" },
          el("caption", { class: "sr-only" }, T.field_mappings),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, T.our_field), el("th", { scope: "col" }, T.crm_property),
            el("th", { scope: "col" }, T.transform), el("th", { scope: "col" }, T.actions))),
          tbody),
        el("p", {}, add, " ", el("button", { type: "submit", class: "primary" }, T.save), " ", result));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const mapping = [...tbody.querySelectorAll("tr")].map((tr) => ({
          source: tr.querySelector("[name=source]").value.trim(),
          target: tr.querySelector("[name=target]").value.trim(),
          transform: tr.querySelector("[name=transform]").value.trim() || "text",
        })).filter((r) => r.source || r.target);
        api("PUT", "/api/v1/crm/" + encodeURIComponent(id) + "/settings", { mapping }).then(() => {
          result.replaceChildren(el("span", { class: "ok" }, T.saved));
        }).catch((err) => result.replaceChildren(el("span", { class: "error" }, err.message)));
      });
      return form;
    }

    function crmPanel(item) {
      const conn = item.connection;
      const name = ((catalog[conn.provider] || {}).display_name || conn.provider) + " — " + accountOf(conn);
      const hid = "crm-" + conn.id;
      const logs = el("tbody", {});
      const dead = el("tbody", {});
      const replayStatus = el("span", { role: "status", "aria-live": "polite" });
      const replay = el("button", { type: "button" }, T.replay);
      function loadDead() {
        api("GET", "/api/v1/crm/" + encodeURIComponent(conn.id) + "/dead-letters").then((data) => {
          rowsOr(dead, data.dead, [(d) => d.lead_id, (d) => el("td", { class: "num" }, String(d.attempts || 0)),
            (d) => d.last_error || "", (d) => when(d.queued_at)], T.nothing);
        }).catch((err) => alertIn(replayStatus, err.message));
      }
      function loadLogs() {
        api("GET", "/api/v1/crm/" + encodeURIComponent(conn.id) + "/logs?limit=20").then((data) => {
          rowsOr(logs, data.logs, [(l) => when(l.at), (l) => l.type || "", (l) => l.status || "",
            (l) => l.lead_id || "", (l) => l.error || "", (l) => el("td", { class: "num" }, l.duration_ms === undefined ? "" : l.duration_ms + " ms")], T.nothing);
        }).catch(() => {});
      }
      replay.addEventListener("click", () => {
        api("POST", "/api/v1/crm/" + encodeURIComponent(conn.id) + "/replay").then((r) => {
          replayStatus.replaceChildren(el("span", { class: "ok" }, r.replayed + " " + T.replayed));
          loadDead(); loadLogs();
        }).catch((err) => replayStatus.replaceChildren(el("span", { class: "error" }, err.message)));
      });
      loadDead(); loadLogs();
      return el("section", { class: "card", "aria-labelledby": hid, "data-crm": conn.id },
        el("h2", { id: hid }, T.crm_sync + T.colon + name),
        el("h3", {}, T.field_mappings), mappingEditor(conn, item.settings || {}),
        el("h3", {}, T.dead_letter),
        el("table", { class: "grid dead" }, el("caption", { class: "sr-only" }, T.dead_letter),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, T.lead), el("th", { scope: "col", class: "num" }, T.attempts),
            el("th", { scope: "col" }, T.last_error), el("th", { scope: "col" }, T.updated))), dead),
        el("p", {}, replay, " ", replayStatus),
        el("h3", {}, T.sync_logs),
        el("table", { class: "grid logs" }, el("caption", { class: "sr-only" }, T.sync_logs),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, T.when), el("th", { scope: "col" }, T.kind),
            el("th", { scope: "col" }, T.status), el("th", { scope: "col" }, T.lead), el("th", { scope: "col" }, T.last_error),
            el("th", { scope: "col", class: "num" }, T.duration))), logs));
    }

    function crm() {
      api("GET", "/api/v1/crm/integrations").then((data) => {
        panels.replaceChildren(...data.integrations.map(crmPanel));
      }).catch(() => panels.replaceChildren());
    }

    function credentialsForm(p) {
      const mode = p.auth_modes.find((m) => m !== "oauth2");
      const fields = (p.credentials || {})[mode] || [];
      const form = el("form", { class: "creds", "data-provider": p.name });
      for (const f of fields) {
        const id = "cred-" + p.name + "-" + f.name;
        form.append(el("p", {}, el("label", { for: id }, word("cf_", f.name) + (f.required ? "" : " " + T.optional)),
          el("input", { id, name: f.name, type: f.secret ? "password" : "text", autocomplete: "off",
            required: f.required ? "required" : null, title: f.description || null })));
      }
      if (p.api) {
        const id = "cred-" + p.name + "-base_url";
        form.append(el("p", {}, el("label", { for: id }, T.api_base_url + " " + T.optional),
          el("input", { id, name: "__base_url", type: "url", placeholder: p.api.base_url || "" })));
      }
      form.append(el("p", {}, el("button", { type: "submit", class: "primary", "aria-label": T.connect + " " + p.display_name }, T.connect)));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const credentials = {};
        const settings = {};
        for (const [k, v] of new FormData(form).entries()) {
          if (!String(v).trim()) continue;
          if (k === "__base_url") settings.base_url = String(v).trim(); else credentials[k] = String(v);
        }
        api("POST", "/api/v1/integrations", { provider: p.name, auth_mode: mode, credentials, settings }).then(() => {
          say(T.now_connected + T.colon + p.display_name, true);
          form.reset();
          refresh();
        }).catch((err) => say(err.message, false));
      });
      return form;
    }

    function connectCell(p) {
      const cell = el("td", {});
      if (p.auth_modes.includes("oauth2")) {
        const button = el("button", { type: "button", class: "primary", "aria-label": T.connect + " " + p.display_name,
          disabled: p.oauth_app_configured === false ? "disabled" : null }, T.connect);
        button.addEventListener("click", () => {
          api("POST", "/auth/" + encodeURIComponent(p.name) + "/link").then((r) => {
            window.location.assign(r.url);
          }).catch((err) => say(err.message, false));
        });
        cell.append(button);
        if (p.oauth_app_configured === false) {
          cell.append(el("p", { class: "note" }, T.oauth_app_missing));
          const appForm = el("form", { class: "creds", "data-oauth-app": p.name });
          for (const name of ["client_id", "client_secret"]) {
            const id = "app-" + p.name + "-" + name;
            appForm.append(el("p", {}, el("label", { for: id }, name),
              el("input", { id, name, type: name === "client_secret" ? "password" : "text", autocomplete: "off", required: "required" })));
          }
          appForm.append(el("p", {}, el("button", { type: "submit" }, T.save)));
          appForm.addEventListener("submit", (event) => {
            event.preventDefault();
            const body = Object.fromEntries([...new FormData(appForm).entries()].map(([k, v]) => [k, String(v).trim()]));
            api("PUT", "/api/v1/oauth-apps/" + encodeURIComponent(p.name), body).then(() => {
              say(T.saved + T.colon + p.display_name, true);
              loadCatalog();
            }).catch((err) => say(err.message, false));
          });
          cell.append(el("details", { class: "keyed" }, el("summary", { "aria-label": T.set_oauth_app + T.colon + p.display_name }, T.set_oauth_app), appForm));
        }
      }
      if (p.auth_modes.some((m) => m !== "oauth2")) {
        cell.append(el("details", { class: "keyed" }, el("summary", { "aria-label": T.connect_with_key + T.colon + p.display_name }, T.connect_with_key), credentialsForm(p)));
      }
      return cell;
    }

    function refresh() { connections(); crm(); }

    function loadCatalog() {
      return api("GET", "/api/v1/integrations").then((data) => {
        // A provider whose catalog name is a description rather than a brand has words of its own.
        for (const p of data.providers) p.display_name = T["prov_" + p.name] || p.display_name;
        catalog = Object.fromEntries(data.providers.map((p) => [p.name, p]));
        rowsOr(document.querySelector("#catalog-table tbody"), data.providers, [
          (p) => el("a", { href: p.docs, rel: "noopener noreferrer" }, p.display_name),
          (p) => (p.categories || []).map((c) => T["cat_" + c] || c).join(", "),
          (p) => p.auth_modes.map((m) => T["auth_" + m] || m).join(", "),
          connectCell,
        ], T.nothing);
      });
    }

    loadCatalog().then(refresh).catch((err) => alertIn(notice, err.message));
  }

  // ------------------------------------------------------------------ settings
  // A time of day as the API takes it ("HH:MM", 24-hour), from what a person types: "9", "0930",
  // "9:30", "18h30", "9 h", "6:30 pm", "12 am". null when it is no time of day. The fields are text
  // inputs, not type=time, whose display follows the browser's locale (12:00 AM on a French page).
  const TIME = /^(\d{1,2})(?:\s*[:hH.]\s*(\d{2})?|(\d{2}))?\s*(?:([aApP])\.?\s*[mM]\.?)?$/;
  function parseTime(raw) {
    const m = TIME.exec(String(raw).trim());
    if (!m) return null;
    let hours = Number(m[1]);
    const minutes = Number(m[2] || m[3] || 0);
    if (m[4]) {
      if (hours < 1 || hours > 12) return null;
      hours = (hours % 12) + (/p/i.test(m[4]) ? 12 : 0);
    }
    if (hours > 23 || minutes > 59) return null;
    return String(hours).padStart(2, "0") + ":" + String(minutes).padStart(2, "0");
  }

  function settingsPage() {
    const form = document.getElementById("settings-form");
    const status = document.getElementById("settings-status");
    const errors = document.getElementById("settings-errors");
    const preview = document.getElementById("preview");
    let current = {};

    function fill(settings) {
      current = settings;
      for (const input of form.querySelectorAll("[name]")) {
        const kind = input.dataset.kind || "";
        const [key, sub] = input.name.split(".");
        const value = settings[key];
        if (kind === "lang-map") input.value = (value || {})[sub] || "";
        else if (kind === "list") input.value = (value || []).join(", ");
        else if (kind === "lines") input.value = (value || []).join("\n");
        else if (kind === "json") input.value = value && Object.keys(value).length ? JSON.stringify(value, null, 2) : "";
        else input.value = value === null || value === undefined ? "" : String(value);
      }
    }

    function collect() {
      const body = {};
      const problems = [];
      for (const input of form.querySelectorAll("[name]")) {
        const kind = input.dataset.kind || "";
        const [key, sub] = input.name.split(".");
        const raw = input.value.trim();
        let value;
        if (kind === "lang-map") { body[key] = body[key] || { ...(current[key] || {}) }; if (raw) body[key][sub] = raw; else delete body[key][sub]; continue; }
        if (kind === "list") value = raw ? raw.split(",").map((s) => s.trim()).filter(Boolean) : [];
        else if (kind === "lines") value = raw ? raw.split("\n").map((s) => s.trim()).filter(Boolean) : [];
        else if (kind === "int") { if (!raw) continue; value = parseInt(raw, 10); }
        else if (kind === "time") {
          value = parseTime(raw);
          if (value === null) { problems.push({ field: key, reason: T.bad_time }); continue; }
        }
        else if (kind === "amount") value = raw ? Number(raw) : null;
        else if (kind === "json") {
          try { value = raw ? JSON.parse(raw) : {}; } catch (e) { problems.push({ field: key, reason: T.bad_json }); continue; }
        } else if (kind === "nullable") value = raw || null;
        else { if (!raw && current[key] === null) continue; value = raw; }
        body[key] = value;
      }
      for (const key of Object.keys(body)) {
        if (JSON.stringify(body[key]) === JSON.stringify(current[key])) delete body[key];
      }
      return [body, problems];
    }

    // A field as the page names it: its own label, else its setting's ("burst_window_seconds.sms"),
    // else the page's title (a refusal of the whole form, "body").
    function labelOf(field) {
      for (const name of [field, field.split(".")[0]]) {
        const input = form.querySelector('[name="' + CSS.escape(name) + '"]');
        const label = input && input.labels && input.labels[0];
        if (label) return label.textContent.trim();
      }
      return T.settings;
    }

    function showErrors(list) {
      errors.replaceChildren(...list.map((e) => el("li", {}, labelOf(e.field) + T.colon + refusal(e, e.reason))));
      for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
      for (const e of list) {
        const input = form.querySelector('[name="' + CSS.escape(e.field.split(".")[0]) + '"]');
        if (input) input.setAttribute("aria-invalid", "true");
      }
    }

    // The widget's look, redrawn on every keystroke (CSSOM custom properties: allowed by the CSP).
    function drawPreview() {
      const value = (name) => (form.querySelector('[name="' + name + '"]') || {}).value || "";
      const color = /^#[0-9a-fA-F]{6}$/;
      preview.style.setProperty("--brand", color.test(value("brand_color")) ? value("brand_color") : "#1f6feb");
      preview.style.setProperty("--brand-text", color.test(value("brand_text_color")) ? value("brand_text_color") : "#ffffff");
      preview.querySelector(".wp-name").textContent = value("name");
      const greeting = preview.querySelector(".wp-greeting");
      const text = value("greeting." + LANG) || value("greeting.en") ||
        (preview.dataset.welcome || "").replace("{company_name}", value("name"));
      greeting.textContent = window.LeadWarmGlyphs ? window.LeadWarmGlyphs.visible(text, getComputedStyle(greeting).font) : text;
      const logo = preview.querySelector(".wp-logo");
      const url = value("logo_url");
      logo.hidden = !/^https?:\/\//.test(url);
      if (!logo.hidden && logo.getAttribute("src") !== url) logo.setAttribute("src", url);
    }
    form.addEventListener("input", drawPreview);
    // A time field shows its value as HH:MM once left ("18h30" becomes "18:30"); one that is no
    // time of day is marked invalid at once (the message comes with Save).
    form.addEventListener("change", (event) => {
      const input = event.target;
      if (input.dataset.kind !== "time" || !input.value.trim()) return;
      const value = parseTime(input.value);
      if (value === null) input.setAttribute("aria-invalid", "true");
      else { input.value = value; input.removeAttribute("aria-invalid"); }
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const [body, problems] = collect();
      if (problems.length) { showErrors(problems); return; }
      status.textContent = "";
      api("PUT", "/api/v1/settings", body).then((saved) => {
        fill(saved);
        drawPreview();
        showUsage();
        showErrors([]);
        status.replaceChildren(el("span", { class: "ok" }, T.saved));
      }).catch((err) => showErrors((err.data && err.data.errors) || [{ field: "settings", reason: err.message }]));
    });

    document.getElementById("copy-snippet").addEventListener("click", () => {
      const box = document.getElementById("snippet");
      box.select();
      const done = () => { document.getElementById("copy-status").textContent = T.copied; };
      if (navigator.clipboard) navigator.clipboard.writeText(box.value).then(done, () => { document.execCommand("copy"); done(); });
      else { document.execCommand("copy"); done(); }
    });

    api("GET", "/api/v1/settings").then((settings) => { fill(settings); drawPreview(); }).catch((err) => showErrors([{ field: "settings", reason: err.message }]));
    function showUsage() {
      api("GET", "/api/v1/usage").then((u) => {
        const money = (usd) => new Intl.NumberFormat(LANG, { style: "currency", currency: "USD", maximumFractionDigits: 2 }).format(usd);
        document.getElementById("budget").textContent = T.budget_month + T.colon + money(u.cost_usd || 0) + " " + T.spent + " " +
          (u.budget_usd !== null && u.budget_usd !== undefined ? T.of_budget + " " + money(u.budget_usd) : "(" + T.no_budget + ")");
      }).catch(() => { document.getElementById("budget").textContent = "–"; });
    }
    showUsage();
  }

  // ------------------------------------------------------------------ analytics charts
  function analyticsCharts() {
    const root = document.getElementById("playbooks");
    if (!root) return;
    function decorate() {
      for (const section of root.querySelectorAll("section[data-playbook]")) {
        if (section.querySelector("figure.chart")) continue;
        const id = section.dataset.playbook;
        const capId = "chart-" + id;
        const img = el("img", {
          src: "/api/v1/analytics/playbooks/" + encodeURIComponent(id) + "/funnel.svg?lang=" + encodeURIComponent(LANG),
          alt: T.funnel_chart_alt, width: "720", height: "320", "aria-describedby": capId,
        });
        const figure = el("figure", { class: "chart" }, img, el("figcaption", { id: capId }, T.funnel_chart));
        const table = section.querySelector("table");
        if (table) section.insertBefore(figure, table); else section.append(figure);
      }
    }
    new MutationObserver(decorate).observe(root, { childList: true });
    decorate();
  }

  const pages = { import: importPage, integrations: integrationsPage, settings: settingsPage, analytics: analyticsCharts };
  const page = pages[document.body.dataset.page];
  if (page) page();
})();
