/* LeadWarm chat widget.
 * <script src="https://leads.example.com/widget.js" data-tenant="acme" async></script>
 * Options: data-lang="fr" (else the browser's), data-open="true" (open at load),
 * data-session="..." (a session created through the API). The chat runs in a frame served by
 * LeadWarm; only the tenant's allowed sites may frame it. */
(() => {
  const script = document.currentScript;
  if (!script || window.__leadwarmWidget) return;
  window.__leadwarmWidget = true;
  const base = new URL(script.src, location.href).origin;
  const tenant = (script.dataset.tenant || "").replace(/[^A-Za-z0-9_-]/g, "");
  const lang = (script.dataset.lang || navigator.language || "en").slice(0, 2).toLowerCase();
  const query = new URLSearchParams({tenant, lang, embed: "1"});
  if (script.dataset.session) query.set("session", script.dataset.session);

  const button = document.createElement("button");
  button.id = "leadwarm-launcher"; button.type = "button"; button.setAttribute("aria-label", "Chat");
  // Drawn icons, not emoji: a page on a machine without an emoji font showed an empty box.
  const SVG = "http://www.w3.org/2000/svg";
  function icon(path) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", "26"); svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", path); p.setAttribute("fill", "none"); p.setAttribute("stroke", "currentColor");
    p.setAttribute("stroke-width", "2"); p.setAttribute("stroke-linecap", "round"); p.setAttribute("stroke-linejoin", "round");
    svg.appendChild(p);
    return svg;
  }
  const BUBBLE = "M4 5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H10l-5 4v-4H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z";
  const CROSS = "M6 6l12 12M18 6L6 18";
  button.replaceChildren(icon(BUBBLE));
  Object.assign(button.style, {position: "fixed", right: "20px", bottom: "20px", width: "56px", height: "56px",
    borderRadius: "50%", border: "0", background: "#1f6feb", color: "#fff", fontSize: "26px", cursor: "pointer", display: "flex", alignItems: "center", justifyContent: "center", padding: "0",
    boxShadow: "0 4px 14px rgba(0,0,0,.25)", zIndex: "2147483000"});
  const frame = document.createElement("iframe");
  frame.id = "leadwarm-chat"; frame.title = "Chat"; frame.hidden = true;
  Object.assign(frame.style, {position: "fixed", right: "20px", bottom: "88px", width: "min(380px, calc(100vw - 40px))",
    height: "min(560px, calc(100vh - 120px))", border: "0", borderRadius: "14px",
    boxShadow: "0 8px 30px rgba(0,0,0,.3)", zIndex: "2147483000", background: "#fff"});
  let loaded = false;
  function toggle(open) {
    if (open && !loaded) { frame.src = base + "/chat?" + query.toString(); loaded = true; }
    frame.hidden = !open;
    button.replaceChildren(icon(open ? CROSS : BUBBLE));
    button.setAttribute("aria-expanded", String(open));
  }
  button.onclick = () => toggle(frame.hidden);
  fetch(base + "/chat/config?" + new URLSearchParams({tenant, lang}).toString())
    .then(r => (r.ok ? r.json() : null))
    .then(cfg => { if (cfg) { button.style.background = cfg.brand_color; button.style.color = cfg.brand_text_color; button.title = cfg.name; } })
    .catch(() => {});
  function mount() {
    document.body.appendChild(frame); document.body.appendChild(button);
    if (script.dataset.open === "true") toggle(true);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
