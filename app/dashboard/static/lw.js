// LeadWarm dashboard: what every page script shares, loaded first by base.html. The page's strings,
// the session's CSRF token (sent in X-CSRF-Token on writes), el() which puts API text only ever into
// textContent (never innerHTML, so a lead's message cannot inject markup), and call()/api() to
// /api/v1 with the session cookie (a 401 goes back to the sign-in page).
"use strict";

window.LW = (function () {
  const T = JSON.parse(document.getElementById("lw-strings").textContent);
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const LANG = document.documentElement.lang || "en";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A value the API gives as a code, in the page's words: T[prefix + code], else the code itself.
  function word(prefix, code) {
    if (code === null || code === undefined || code === "") return "";
    return T[prefix + code] || String(code);
  }

  // Parameters whose value is a code with words of its own under a prefix: a credential field, a
  // connection's status.
  const PARAM_WORDS = { field: "cf_", status: "cst_" };

  // T's text `key` with its {name} placeholders filled from `params`: a value with words of its own
  // (T.sp_<name>_<value>) in those words, a number in the page's notation. null when the key or a
  // parameter is missing (the caller then shows the API's own text).
  function fill(key, params) {
    const template = T[key];
    if (!template) return null;
    let missing = false;
    const text = template.replace(/\{(\w+)\}/g, (_, name) => {
      const v = (params || {})[name];
      if (v === null || v === undefined) { missing = true; return ""; }
      return T["sp_" + name + "_" + v] || (PARAM_WORDS[name] && T[PARAM_WORDS[name] + v]) ||
        (typeof v === "number" ? v.toLocaleString(LANG) : String(v));
    });
    return missing ? null : text;
  }

  // A score change's { reason, evidence } in the page's words: the built-in scorer's reasons come
  // with a code (app/conversations/score_reasons.py); a playbook author's own text stays as written.
  function scoreReason(s) {
    const p = s.reason_params || {};
    const code = s.reason_code;
    let reason = code ? fill("sr_" + code, p) : null;
    if (reason === null) return { reason: s.reason || "", evidence: s.evidence || "" };
    if (typeof p.was === "number") reason += fill("sr_was", { was: (p.was > 0 ? "+" : "") + p.was });
    const evidence = T["se_" + code] ? fill("se_" + code, p) : null;
    return { reason, evidence: evidence === null ? s.evidence || "" : evidence };
  }

  // One call; `body` is JSON, a FormData, or (with `raw`) YAML text sent as is. Never throws on an
  // HTTP error: returns { ok, status, data }.
  async function call(method, url, body, raw) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      init.headers["X-CSRF-Token"] = CSRF;
      if (body instanceof FormData) init.body = body;
      else if (raw) { init.headers["Content-Type"] = "application/yaml"; init.body = body; }
      else { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body || {}); }
    }
    const response = await fetch(url, init);
    if (response.status === 401) {
      window.location.assign("/app/signin?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    const data = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, data };
  }

  // A refusal in the page's words: T.err_<code> filled with its params (app/core/coded_errors.py:
  // `code` on a settings error, `extra.code` on a 400), else the API's own English.
  function refusal(e, english) {
    const coded = e && (e.code ? e : e.extra && !Array.isArray(e.extra) ? e.extra : null);
    return (coded && coded.code && fill("err_" + coded.code, coded.params)) || english;
  }

  // The answer's data; an HTTP error throws an Error with the API's detail, in the page's words
  // when it has a code (and `.data`).
  async function api(method, url, body) {
    const r = await call(method, url, body);
    if (!r.ok) {
      const error = new Error(refusal(r.data, r.data.detail || r.data.error || T.error + " (" + r.status + ")"));
      error.data = r.data;
      throw error;
    }
    return r.data;
  }

  // On a phone a wide table scrolls inside itself (dashboard.css); a table that does is a stop of
  // the Tab key, so the keyboard can scroll it too (its caption names it). Re-checked as it resizes.
  const scrolling = new ResizeObserver((entries) => {
    for (const { target } of entries) {
      if (target.scrollWidth > target.clientWidth + 1) target.setAttribute("tabindex", "0");
      else if (target.getAttribute("tabindex") === "0") target.removeAttribute("tabindex");
    }
  });
  const watch = (node) => {
    if (node.nodeType !== 1) return;
    if (node.matches("table.grid")) scrolling.observe(node);
    node.querySelectorAll("table.grid").forEach((table) => scrolling.observe(table));
  };
  watch(document.body);  // and the tables page scripts draw later (analytics, integrations)
  new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach(watch)))
    .observe(document.body, { childList: true, subtree: true });

  return Object.freeze({ T, CSRF, LANG, el, call, api, word, fill, scoreReason, refusal });
})();
