/*
 * Switchboard web-chat widget. Paste into a site:
 *   <script src="https://API/widget.js" data-site="acme" data-api="https://API"></script>
 * data-api defaults to where this script came from. Optional: data-title, data-name (the visitor's name),
 * data-ws (the WebSocket URL; the script as the API serves it names the deployment's), data-color (the launcher's
 * and header's colour, any CSS colour; text on it is black or white, whichever reads better) and data-position
 * ("right", the default, or "left"). On a phone (480 px wide or less) the open chat fills the screen.
 * Opening the panel the first time reads GET {api}/widget/config?site=&lang= once: the greeting (in the
 * browser's language), and whether web chat is open now; closed (the hours of its queue), a visitor without a
 * chat in progress gets an offline form (name, e-mail, message) that posts to POST {api}/widget/offline and is
 * answered by e-mail. Every message shows its time (the visitor's local time) and an agent's answer its name.
 * The launcher's badge counts answers the visitor has not seen: read once when a page loads with the panel
 * closed and a chat in progress, and counted while the panel is open in a window without focus.
 * Messages go to POST {api}/widget/messages; a message that failed to send keeps its message_id, so
 * sending it again cannot store it twice. Replies are pushed: while the panel is open and the page visible,
 * the widget holds a WebSocket to {ws}?site=&visitor_id=&conversation_id= and shows what arrives on it. Each
 * time the socket opens (and again after it dropped: mobile networks, API Gateway's 10-minute idle and 2-hour
 * limits) it reads what it missed once, from GET {api}/widget/conversations/{id}/messages?after=<cursor>, then
 * only waits. While the socket is open it sends {"action": "ping"} every 9 minutes (data-keepalive-seconds,
 * default 540): just under API Gateway's 10-minute idle timeout, so an open widget keeps one socket for up to
 * the gateway's 2 hours; each ping is one Lambda invocation and no AWS call (at most 13 per connection). After
 * the 2-hour cut it reconnects with backoff and reads only what it missed: from the newest message it read or
 * was pushed, less a minute for pushes that raced each other. A closed panel or a background tab holds no socket and makes no request. If the socket cannot
 * open (a proxy or the host's CSP blocks it) it retries with backoff up to 30 s, reading what it missed each
 * time, so the visitor still gets every answer. The visitor id (a random id, the visitor's only credential),
 * the open conversation and whether the panel is open are kept in localStorage. Text is only set with
 * textContent. Under a host page's Content-Security-Policy: allow this script (its origin, or a nonce on the
 * tag) and connect-src to {api} and {ws}; the widget's <style> carries the script tag's nonce, so a
 * nonce-based style-src works too (otherwise style-src needs 'unsafe-inline' for the widget to look right).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var site = script.getAttribute("data-site") || "";
  var api = (script.getAttribute("data-api") || script.src.replace(/\/widget\.js(\?.*)?$/, "")).replace(/\/+$/, "");
  var title = script.getAttribute("data-title") || "Chat with us";
  var visitorName = script.getAttribute("data-name") || "";
  var color = script.getAttribute("data-color") || "";
  var position = script.getAttribute("data-position") === "left" ? "left" : "right";
  var ws = script.getAttribute("data-ws") || "__SWITCHBOARD_WEBSOCKET_URL__";
  if (ws.indexOf("__") === 0) ws = "";  // a copy of the script not served by the API: no socket without data-ws
  var RETRY_MIN_MS = 1000;
  var RETRY_MAX_MS = 30000;
  var PING_MS = (Number(script.getAttribute("data-keepalive-seconds")) || 540) * 1000;
  var PING = JSON.stringify({ action: "ping" });
  var RACE_MS = 60000;  // pushes from concurrent Lambdas may arrive out of order: re-read that last minute
  var storeKey = "switchboard.widget." + site;

  function randomId(prefix) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (_) { return {}; }
  }
  var saved = load();
  var visitor = { id: saved.visitor_id || randomId("v_"), conversation: saved.conversation_id || null,
    ended: !!saved.ended, seen: saved.seen || "", contact: saved.contact || null };
  function save() {
    try {
      localStorage.setItem(storeKey, JSON.stringify({ visitor_id: visitor.id, conversation_id: visitor.conversation,
        ended: visitor.ended, open: !panel.hidden, seen: visitor.seen, contact: visitor.contact }));
    } catch (_) { /* private mode: the chat lasts as long as the page */ }
  }

  var side = position === "left" ? "left" : "right";
  var css =
    ".sbw-bubble{position:fixed;" + side + ":20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:var(--sbw-accent);color:var(--sbw-on-accent);display:flex;align-items:center;justify-content:center;cursor:pointer;box-shadow:0 4px 12px rgba(0,0,0,.25);z-index:2147483000}" +
    ".sbw-bubble:focus-visible,.sbw-panel :focus-visible{outline:3px solid #111827;outline-offset:2px}" +
    ".sbw-badge{position:absolute;top:-4px;" + (side === "left" ? "right" : "left") + ":-4px;min-width:20px;height:20px;padding:0 5px;" +
    "box-sizing:border-box;border-radius:10px;background:#b91c1c;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center}" +
    ".sbw-badge[hidden]{display:none}" +
    ".sbw-panel{position:fixed;" + side + ":20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 108px);" +
    "display:flex;flex-direction:column;box-sizing:border-box;" +
    "background:#fff;border:1px solid #e5e7eb;border-radius:12px;box-shadow:0 8px 24px rgba(0,0,0,.2);" +
    "font:14px/1.4 system-ui,sans-serif;color:#1d2330;z-index:2147483000}" +
    ".sbw-panel[hidden],.sbw-panel [hidden]{display:none}" +
    ".sbw-head{display:flex;align-items:center;gap:8px;padding:8px 8px 8px 14px;background:var(--sbw-accent);color:var(--sbw-on-accent);border-radius:12px 12px 0 0}" +
    ".sbw-title{flex:1;margin:0;font-size:15px;font-weight:600}" +
    ".sbw-close{border:0;background:none;color:inherit;width:32px;height:32px;border-radius:6px;font:22px/1 system-ui,sans-serif;cursor:pointer}" +
    ".sbw-log{flex:1;overflow:auto;padding:10px;display:flex;flex-direction:column;gap:6px;min-height:120px}" +
    ".sbw-prechat{flex-basis:100%;display:flex;flex-direction:column;gap:6px;font-size:13px}" +
    ".sbw-prechat label{display:flex;flex-direction:column;gap:2px}" +
    ".sbw-prechat input{font:inherit;padding:6px 8px;border:1px solid #94a3b8;border-radius:6px}" +
    ".sbw-typing{padding:0 12px 4px;font-size:12px;color:#475569;font-style:italic}" +
    ".sbw-greeting{align-self:flex-start;max-width:85%;padding:8px 10px;border-radius:10px;background:#f1f5f9}" +
    ".sbw-item{display:flex;flex-direction:column;max-width:80%}" +
    ".sbw-item-visitor{align-self:flex-end;align-items:flex-end}" +
    ".sbw-item-agent,.sbw-item-bot{align-self:flex-start;align-items:flex-start}" +
    ".sbw-item-system{align-self:center;align-items:center}" +
    ".sbw-msg{padding:6px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}" +
    ".sbw-visitor{background:var(--sbw-accent);color:var(--sbw-on-accent)}" +
    ".sbw-agent{background:#f1f5f9}" +
    ".sbw-bot{background:#f1f5f9}" +
    ".sbw-meta{font-size:11px;color:#4b5563;margin:1px 4px}" +
    ".sbw-choices{display:flex;gap:6px;flex-wrap:wrap}" +
    ".sbw-choice{border:1px solid #64748b;border-radius:12px;background:#fff;color:#1d2330;padding:4px 10px;cursor:pointer;font:inherit}" +
    ".sbw-system{background:#fffbeb;font-size:12px}" +
    ".sbw-status{align-self:center;padding:4px 10px;border-radius:10px;color:#4b5563;font-size:12px}" +
    ".sbw-form{display:flex;border-top:1px solid #e5e7eb}" +
    ".sbw-form input{flex:1;min-width:0;border:0;padding:10px;font:inherit;color:#1d2330;background:#fff}" +
    ".sbw-attach{border:0;background:none;color:#374151;padding:0 4px 0 10px;cursor:pointer;display:flex;align-items:center}" +
    ".sbw-file{display:block;margin-top:2px;color:inherit;text-decoration:underline}" +
    ".sbw-send{border:0;background:none;color:#1e4fc2;font:inherit;font-weight:600;padding:0 12px;cursor:pointer}" +
    ".sbw-error{color:#b91c1c;font-size:12px;padding:0 10px}" +
    ".sbw-offline{display:flex;flex-direction:column;gap:8px;padding:12px;overflow:auto;flex:1}" +
    ".sbw-offline[hidden]{display:none}" +
    ".sbw-offline p{margin:0}" +
    ".sbw-offline label{display:flex;flex-direction:column;gap:2px;font-size:13px;font-weight:600}" +
    ".sbw-offline input,.sbw-offline textarea{font:inherit;font-weight:400;padding:7px 8px;border:1px solid #64748b;border-radius:6px;color:#1d2330;background:#fff}" +
    ".sbw-offline textarea{min-height:80px;resize:vertical}" +
    ".sbw-offline button{align-self:flex-start;border:0;border-radius:6px;padding:8px 14px;background:var(--sbw-accent);color:var(--sbw-on-accent);font:inherit;font-weight:600;cursor:pointer}" +
    ".sbw-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    "@media (max-width:480px){.sbw-panel{left:0;right:0;top:0;bottom:0;width:auto;max-width:none;height:auto;max-height:none;" +
    "border-radius:0;border:0}.sbw-head{border-radius:0}.sbw-bubble.sbw-is-open{display:none}}";
  var style = document.createElement("style");
  if (script.nonce) style.nonce = script.nonce;  // a host CSP with nonces allows the widget's style as its script
  style.textContent = css;
  document.head.appendChild(style);

  function node(tag, className, text) {
    var n = document.createElement(tag);
    if (className) n.className = className;
    if (text != null) n.textContent = text;
    return n;
  }
  var bubble = node("button", "sbw-bubble");
  bubble.type = "button";
  // A speech-bubble icon drawn inline: no emoji font or image request needed.
  var SVG = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "26");
  icon.setAttribute("height", "26");
  icon.setAttribute("aria-hidden", "true");
  var shape = document.createElementNS(SVG, "path");
  shape.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  shape.setAttribute("fill", "currentColor");
  icon.appendChild(shape);
  bubble.appendChild(icon);
  var badge = node("span", "sbw-badge", "");
  badge.hidden = true;
  badge.setAttribute("aria-hidden", "true");  // the launcher's own label says how many are unread
  badge.setAttribute("data-testid", "widget-badge");
  bubble.appendChild(badge);
  bubble.setAttribute("aria-label", title);
  bubble.setAttribute("data-testid", "widget-bubble");
  var panelId = "sbw-panel-" + randomId("").slice(0, 8);
  var panel = node("div", "sbw-panel");
  panel.id = panelId;
  panel.hidden = true;
  panel.setAttribute("data-testid", "widget-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", panelId + "-title");
  bubble.setAttribute("aria-controls", panelId);
  var head = node("div", "sbw-head");
  var heading = node("h2", "sbw-title", title);
  heading.id = panelId + "-title";
  var closer = node("button", "sbw-close", "\u00d7");
  closer.type = "button";
  closer.setAttribute("aria-label", "Close chat");
  closer.setAttribute("data-testid", "widget-close");
  head.appendChild(heading);
  head.appendChild(closer);
  var log = node("div", "sbw-log");
  log.setAttribute("data-testid", "widget-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Messages");
  log.tabIndex = 0;  // scrollable: keyboard users can scroll it
  var greeting = node("div", "sbw-greeting", "");
  greeting.hidden = true;
  greeting.setAttribute("data-testid", "widget-greeting");
  log.appendChild(greeting);
  var error = node("div", "sbw-error");
  error.setAttribute("data-testid", "widget-error");
  error.setAttribute("role", "alert");
  var form = node("form", "sbw-form");
  var input = node("input");
  input.placeholder = "Type a message";
  input.setAttribute("aria-label", "Message");
  input.setAttribute("data-testid", "widget-input");
  input.maxLength = 4000;
  var send = node("button", "sbw-send", "Send");
  send.type = "submit";
  send.setAttribute("data-testid", "widget-send");
  var attach = node("button", "sbw-attach", "");
  attach.type = "button";
  attach.hidden = true;  // until the config says attachments are taken
  attach.setAttribute("aria-label", "Attach a file");
  attach.setAttribute("data-testid", "widget-attach");
  var clip = document.createElementNS(SVG, "svg");
  clip.setAttribute("viewBox", "0 0 24 24");
  clip.setAttribute("width", "20");
  clip.setAttribute("height", "20");
  clip.setAttribute("aria-hidden", "true");
  var clipPath = document.createElementNS(SVG, "path");
  clipPath.setAttribute("d", "M16.5 6.5 8.6 14.4a2 2 0 0 0 2.8 2.8l7.9-7.9a4 4 0 0 0-5.7-5.7L5.7 11.5a6 6 0 0 0 8.5 8.5l6.3-6.3");
  clipPath.setAttribute("fill", "none");
  clipPath.setAttribute("stroke", "currentColor");
  clipPath.setAttribute("stroke-width", "2");
  clip.appendChild(clipPath);
  attach.appendChild(clip);
  var picker = node("input");
  picker.type = "file";
  picker.hidden = true;
  picker.tabIndex = -1;
  picker.setAttribute("aria-hidden", "true");
  picker.setAttribute("data-testid", "widget-file");
  // The optional pre-chat form (widget.pre_chat_form): name and e-mail before the first message.
  var prechat = node("div", "sbw-prechat");
  prechat.hidden = true;
  prechat.setAttribute("data-testid", "widget-prechat");
  function prechatField(label, type, test, max, autocomplete) {
    var wrap = node("label", null, label);
    var control = node("input");
    control.type = type;
    control.maxLength = max;
    control.autocomplete = autocomplete;
    control.setAttribute("data-testid", test);
    wrap.appendChild(control);
    prechat.appendChild(wrap);
    return control;
  }
  var prechatName = prechatField("Your name", "text", "prechat-name", 200, "name");
  var prechatEmail = prechatField("Your e-mail", "email", "prechat-email", 254, "email");
  if (visitorName) prechatName.value = visitorName;
  form.appendChild(prechat);
  form.appendChild(attach);
  form.appendChild(picker);
  form.appendChild(input);
  form.appendChild(send);
  var offline = offlineForm();
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(offline.box);
  panel.appendChild(error);
  panel.appendChild(form);
  document.body.appendChild(panel);
  document.body.appendChild(bubble);
  theme();
  panel.hidden = !saved.open;
  save();

  // --- looks: data-color, with text in black or white (whichever contrasts more) -----------------------------
  function theme() {
    var accent = "#1e4fc2";
    if (color && window.CSS && CSS.supports && CSS.supports("color", color)) accent = color;
    var probe = node("span");
    probe.style.color = accent;
    document.body.appendChild(probe);
    var rgb = (getComputedStyle(probe).color.match(/\d+(\.\d+)?/g) || ["30", "79", "194"]).map(Number);
    probe.remove();
    var lum = rgb.slice(0, 3).map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    var onAccent = (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? "#111827" : "#ffffff";  // WCAG contrast: the better
    [bubble, panel].forEach(function (n) {
      n.style.setProperty("--sbw-accent", accent);
      n.style.setProperty("--sbw-on-accent", onAccent);
    });
  }

  // --- opening, closing, the greeting and the hours ---------------------------------------------------------
  var config = null;  // GET /widget/config's answer, read once per page on the first opening
  var configAsked = false;
  function readConfig() {
    if (configAsked) return;
    configAsked = true;
    var lang = (navigator.language || "en").slice(0, 35);
    fetch(api + "/widget/config?" + new URLSearchParams({ site: site, lang: lang }).toString())
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        config = data;
        greeting.textContent = data.greeting;
        greeting.hidden = false;
        showMode();
        showAttach();
      })
      .catch(function () { configAsked = false; /* offline for a moment: read on the next opening */ });
  }

  function chatting() { return !!visitor.conversation && !visitor.ended; }

  function showMode() {
    // Closed hours and no chat in progress: the offline form instead of the chat.
    var away = !!config && config.open === false && !chatting() && !offline.sent;
    offline.box.hidden = !away;
    form.hidden = away;
    log.hidden = away;
    prechat.hidden = !(config && config.pre_chat_form && !visitor.conversation && !visitor.contact);
    if (away) offline.explain(config.opens_at);
  }

  function setOpen(open) {
    panel.hidden = !open;
    bubble.setAttribute("aria-expanded", open ? "true" : "false");
    bubble.classList.toggle("sbw-is-open", open);
    save();
    if (open) {
      readConfig();
      markSeen();
      (offline.box.hidden ? input : offline.first).focus();
      if (visitor.ended && !readOnce) catchUp();  // the ended chat's history, once
    } else {
      bubble.focus();
    }
    listen();
  }
  bubble.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
  bubble.classList.toggle("sbw-is-open", !panel.hidden);
  bubble.addEventListener("click", function () { setOpen(panel.hidden); });
  closer.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); setOpen(false); }
  });
  if (!panel.hidden) readConfig();

  // --- unread: answers the visitor has not seen (the launcher's badge and label) -----------------------------
  var unread = 0;
  function lookingAtIt() { return !panel.hidden && document.visibilityState !== "hidden" && document.hasFocus(); }
  function counted(message) {
    if (message.from === "visitor" || !message.received_at) return;
    if (message.received_at <= visitor.seen) return;
    if (lookingAtIt()) { visitor.seen = message.received_at; save(); return; }
    unread += 1;
    showUnread();
  }
  function markSeen() {
    if (!unread) return;
    unread = 0;
    visitor.seen = newest;
    save();
    showUnread();
  }
  function showUnread() {
    badge.textContent = unread > 9 ? "9+" : String(unread);
    badge.hidden = !unread;
    bubble.setAttribute("aria-label", unread ? title + ", " + badge.textContent + " unread" : title);
  }
  window.addEventListener("focus", function () { if (!panel.hidden) markSeen(); });
  panel.addEventListener("pointerdown", markSeen);

  // --- the offline form: name, e-mail, message; answered by e-mail ------------------------------------------
  function offlineForm() {
    var box = node("form", "sbw-offline");
    box.hidden = true;
    box.noValidate = true;  // the widget says what is wrong, in its own words
    box.setAttribute("data-testid", "widget-offline");
    var intro = node("p", null, "");
    function field(label, kind, test, max) {
      var wrap = node("label", null, label);
      var control = node(kind === "textarea" ? "textarea" : "input");
      if (kind !== "textarea") control.type = kind;
      control.required = true;
      control.maxLength = max;
      control.setAttribute("data-testid", test);
      wrap.appendChild(control);
      box.appendChild(wrap);
      return control;
    }
    box.appendChild(intro);
    var name = field("Your name", "text", "offline-name", 200);
    name.autocomplete = "name";
    if (visitorName) name.value = visitorName;
    var email = field("Your e-mail", "email", "offline-email", 254);
    email.autocomplete = "email";
    var text = field("Your message", "textarea", "offline-message", 4000);
    var submit = node("button", null, "Send message");
    submit.type = "submit";
    submit.setAttribute("data-testid", "offline-send");
    box.appendChild(submit);
    var state = { box: box, first: name, sent: false, pending: null };
    state.explain = function (opensAt) {
      var when = opensAt ? " We are back " + humanTime(opensAt, true) + "." : "";
      intro.textContent = "We are away right now." + when + " Leave a message and we will answer by e-mail.";
    };
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { site: site, name: name.value.trim(), email: email.value.trim(), message: text.value.trim() };
      var missing = !body.name ? name : !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(body.email) ? email : !body.message ? text : null;
      if (missing) {
        error.textContent = missing === email ? "Please give an e-mail address we can answer to." : "Please fill in " +
          (missing === name ? "your name." : "your message.");
        missing.setAttribute("aria-invalid", "true");
        missing.focus();
        return;
      }
      [name, email, text].forEach(function (c) { c.removeAttribute("aria-invalid"); });
      var key = JSON.stringify(body);
      if (!state.pending || state.pending.key !== key) state.pending = { key: key, message_id: randomId("o_") };
      body.message_id = state.pending.message_id;
      body.visitor_id = visitor.id;
      submit.disabled = true;
      fetch(api + "/widget/offline", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
        .then(function (r) {
          return r.json().then(function (data) {
            if (!r.ok) throw new Error(data.message || data.error || "HTTP " + r.status);
          });
        })
        .then(function () {
          state.sent = true;
          error.textContent = "";
          while (box.firstChild) box.removeChild(box.firstChild);
          var done = node("p", null, "Thank you! We will answer you at " + body.email + ".");
          done.setAttribute("data-testid", "offline-done");
          done.tabIndex = -1;
          box.appendChild(done);
          done.focus();
        })
        .catch(function (err) { error.textContent = "Not sent: " + err.message; })
        .then(function () { submit.disabled = false; });
    });
    return state;
  }

  // --- time: every message's, in the visitor's local time -----------------------------------------------------
  function humanTime(iso, future) {
    var at = new Date(Date.parse(String(iso).slice(0, 23) + "Z"));
    if (isNaN(at.getTime())) return "";
    var clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    var today = new Date();
    if (at.toDateString() === today.toDateString()) return future ? "today at " + clock : clock;
    var day = at.toLocaleDateString([], { weekday: future ? "long" : "short", day: "numeric", month: "short" });
    return future ? "on " + day + " at " + clock : day + " " + clock;
  }

  var shown = {};
  var after = "";  // the newest received_at a read gave
  var pushedUpTo = "";  // the newest received_at pushed on the socket
  var newest = "";  // the newest received_at shown: what opening the panel marks seen
  function show(message) {
    if (shown[message.message_id]) return;
    shown[message.message_id] = true;
    var at = message.received_at || new Date().toISOString();
    if (at > newest) newest = at;
    var item = node("div", "sbw-item sbw-item-" + message.from);
    var line = node("div", "sbw-msg sbw-" + message.from, message.text);
    line.setAttribute("data-testid", "widget-message");
    line.setAttribute("data-from", message.from);
    var who = message.from === "agent" ? message.agent_name || "Agent" : message.from === "bot" ? "Assistant" : "";
    var meta = node("div", "sbw-meta", who ? who + " \u00b7 " : "");
    meta.setAttribute("data-testid", "widget-meta");
    var stamp = node("time", null, humanTime(at));
    stamp.dateTime = at;
    stamp.title = new Date(Date.parse(at.slice(0, 23) + "Z")).toLocaleString();
    meta.appendChild(stamp);
    (message.attachments || []).forEach(function (file) {
      if (!/^https?:\/\//.test(file.url || "")) return;
      var link = node("a", "sbw-file", file.filename || "Attachment");
      link.href = file.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.setAttribute("data-testid", "widget-attachment");
      line.appendChild(link);
    });
    item.appendChild(line);
    item.appendChild(meta);
    log.appendChild(item);
    if (choicesShown) { choicesShown.remove(); choicesShown = null; }
    if (message.choices && message.choices.length) showChoices(message.choices);
    log.scrollTop = log.scrollHeight;
    counted(message);
  }

  // The self-service bot's "Did this solve it?": one button per choice, sent as the visitor's message.
  var choicesShown = null;
  function showChoices(choices) {
    var row = node("div", "sbw-choices", "");
    row.setAttribute("data-testid", "widget-choices");
    choices.forEach(function (label) {
      var button = node("button", "sbw-choice", label);
      button.type = "button";
      button.setAttribute("data-testid", "widget-choice");
      button.addEventListener("click", function () {
        input.value = label;
        if (form.requestSubmit) form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true }));
      });
      row.appendChild(button);
    });
    log.appendChild(row);
    choicesShown = row;
  }

  var endedShownFor = null;  // the conversation whose end the log shows
  function ended() {
    // The agent closed the conversation: nothing more comes on it. Writing again starts a new one.
    if (!visitor.ended) { visitor.ended = true; save(); }
    if (endedShownFor !== visitor.conversation) {
      endedShownFor = visitor.conversation;
      var line = node("div", "sbw-status", "This chat has ended. Write again to start a new one.");
      line.setAttribute("data-testid", "widget-status");
      log.appendChild(line);
      log.scrollTop = log.scrollHeight;
    }
    hangUp();
  }


  var pending = null;  // the message being sent: { text, message_id } until the server took it
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim() || (staged ? staged.filename : "");
    if (!text) return;
    var file = staged;
    // Sending the same text again after a failure is a retry: same message_id, so the server stores it once.
    if (!pending || pending.text !== text || pending.file !== file) {
      pending = { text: text, file: file, message_id: randomId("m_") };
    }
    var body = { site: site, visitor_id: visitor.id, message_id: pending.message_id, text: text };
    var asked = !prechat.hidden && { name: prechatName.value.trim(), email: prechatEmail.value.trim() };
    if (asked) {
      var wrong = !asked.name ? prechatName : !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(asked.email) ? prechatEmail : null;
      [prechatName, prechatEmail].forEach(function (c) { c.removeAttribute("aria-invalid"); });
      if (wrong) {
        error.textContent = wrong === prechatName ? "Please tell us your name." : "Please give an e-mail address we can answer to.";
        wrong.setAttribute("aria-invalid", "true");
        wrong.focus();
        return;
      }
      body.name = asked.name;
      body.contact_email = asked.email;
    } else if (visitorName || (visitor.contact && visitor.contact.name)) {
      body.name = visitorName || visitor.contact.name;
    }
    if (file) body.attachment = { key: file.key, filename: file.filename };
    send.disabled = true;
    fetch(api + "/widget/messages", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) {
        return r.json().then(function (data) {
          if (r.status === 409) pending = null;  // that id is taken: the next try is a new message id
          if (!r.ok) throw new Error(data.message || data.error || "HTTP " + r.status);
          return data;
        });
      })
      .then(function (data) {
        pending = null;
        input.value = "";
        if (asked) { visitor.contact = asked; prechat.hidden = true; save(); }
        if (staged === file) staged = null;
        error.textContent = "";
        if (data.conversation_id !== visitor.conversation) {
          hangUp();  // the socket listened to the old conversation
          visitor.conversation = data.conversation_id;
          visitor.ended = false;
          after = "";
          pushedUpTo = "";
          save();
          showMode();
        }
        if (data.message) show(data.message);  // as the server stored it: no read back
        listen();
      })
      .catch(function (err) { error.textContent = "Not sent: " + err.message; })
      .then(function () { send.disabled = false; });
  });

  // --- attachments: a presigned S3 POST per file (POST /widget/attachments), then the message names its key ----
  var staged = null;  // the uploaded file the next message carries: { key, filename }
  function allowedType(type) {
    var kinds = (config && config.attachments.types) || [];
    return kinds.indexOf(type) >= 0 || kinds.indexOf(type.split("/")[0] + "/*") >= 0;
  }
  function showAttach() {
    var on = !!(config && config.attachments && config.attachments.enabled);
    attach.hidden = !on;
    if (on) picker.accept = config.attachments.types.join(",");
  }
  attach.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () {
    var file = picker.files && picker.files[0];
    picker.value = "";
    if (!file || !config) return;
    var type = file.type || "application/octet-stream";
    if (!allowedType(type)) { error.textContent = "Not sent: files of type " + type + " are not accepted here."; return; }
    if (file.size > config.attachments.max_bytes) {
      error.textContent = "Not sent: the file is larger than " + Math.floor(config.attachments.max_bytes / 1048576) + " MB.";
      return;
    }
    attach.disabled = send.disabled = true;
    error.textContent = "Uploading " + file.name + "\u2026";
    var ask = { site: site, visitor_id: visitor.id, filename: file.name.slice(0, 200), content_type: type, size: file.size };
    fetch(api + "/widget/attachments", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(ask) })
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error(data.message || data.error || "HTTP " + r.status);
          return data;
        });
      })
      .then(function (data) {
        var upload = new FormData();
        Object.keys(data.upload.fields).forEach(function (k) { upload.append(k, data.upload.fields[k]); });
        upload.append("file", file);
        return fetch(data.upload.url, { method: "POST", body: upload }).then(function (r) {
          if (!r.ok) throw new Error("the upload was refused (HTTP " + r.status + ")");
          return data.attachment;
        });
      })
      .then(function (attachment) {
        staged = { key: attachment.key, filename: attachment.filename };
        error.textContent = "";
        send.disabled = false;
        if (form.requestSubmit) form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true }));
      })
      .catch(function (err) { error.textContent = "Not sent: " + err.message; send.disabled = false; })
      .then(function () { attach.disabled = false; });
  });

  // --- typing, both ways: "… is typing" for 6 s after the agent's last keystrokes; the visitor's own typing is
  // sent on the open socket at most every 4 s, with the visitor's credentials (the server looks nothing up by
  // connection) -----------------------------------------------------------------------------------------------
  var typingNote = node("div", "sbw-typing", "");
  typingNote.hidden = true;
  typingNote.setAttribute("data-testid", "widget-typing");
  typingNote.setAttribute("aria-live", "polite");
  panel.insertBefore(typingNote, error);
  var typingTimer = null, typingSentAt = 0;
  function agentTyping(on) {
    clearTimeout(typingTimer);
    typingNote.hidden = !on;
    typingNote.textContent = on ? "The agent is typing\u2026" : "";
    if (on) typingTimer = setTimeout(function () { agentTyping(false); }, 6000);
  }
  input.addEventListener("input", function () {
    if (!socket || socket.readyState !== 1 || !visitor.conversation || !input.value.trim()) return;
    if (Date.now() - typingSentAt < 4000) return;
    typingSentAt = Date.now();
    socket.send(JSON.stringify({ action: "typing", site: site, visitor_id: visitor.id, conversation_id: visitor.conversation }));
  });

  // --- replies: pushed on a WebSocket while someone can see the widget; what was missed is read once -------
  var socket = null;
  var retryTimer = null;
  var retryMs = RETRY_MIN_MS;
  var failedOpens = 0;

  function wanted() {
    return !!visitor.conversation && !visitor.ended && !panel.hidden && document.visibilityState !== "hidden";
  }

  function listen() {
    if (!wanted()) { hangUp(); return; }
    if (socket || retryTimer) return;
    if (!ws) { catchUp(); later(); return; }  // no WebSocket URL: read now and then (degraded)
    var query = new URLSearchParams({ site: site, visitor_id: visitor.id, conversation_id: visitor.conversation });
    var me;
    try { me = new WebSocket(ws + (ws.indexOf("?") < 0 ? "?" : "&") + query.toString()); } catch (_) { me = null; }
    if (!me) { failedOpen(); return; }
    socket = me;
    var opened = false;
    var pinger = null;
    me.onopen = function () {
      opened = true;
      retryMs = RETRY_MIN_MS;
      failedOpens = 0;
      catchUp();  // registered now: whatever came before this is in the read, whatever comes after is pushed
      pinger = setInterval(function () { if (socket === me) me.send(PING); }, PING_MS);
    };
    me.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (_) { return; }
      if (!frame || frame.conversation_id !== visitor.conversation) return;
      if (frame.type === "message" && frame.message) {
        agentTyping(false);
        show(frame.message);
        if (frame.message.received_at > pushedUpTo) pushedUpTo = frame.message.received_at;
      }
      else if (frame.type === "status" && frame.status === "closed") ended();
      else if (frame.type === "typing") agentTyping(true);
    };
    me.onclose = function () {
      clearInterval(pinger);
      if (socket !== me) return;  // hung up on purpose
      socket = null;
      if (opened) later(); else failedOpen();
    };
  }

  function failedOpen() {
    // Refused or blocked before it opened: after the first miss, the read says why (404: not this visitor's;
    // ended) and serves the visitor meanwhile.
    failedOpens += 1;
    if (failedOpens >= 2) catchUp();
    later();
  }

  function later() {
    if (!wanted() || retryTimer) return;
    var wait = retryMs * (0.5 + Math.random() / 2);  // jitter: a gateway restart must not reconnect everyone at once
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    retryTimer = setTimeout(function () { retryTimer = null; listen(); }, wait);
  }

  function hangUp() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    var was = socket;
    socket = null;
    if (was) was.close(1000);  // its onclose stops its pings
  }

  var reading = false;
  var readOnce = false;
  function catchUp() {
    if (!visitor.conversation || reading) return;
    reading = true;
    var conversation = visitor.conversation;
    var cursor = after;
    var pushedAt = Date.parse(pushedUpTo.slice(0, 23) + "Z");  // received_at has microseconds; Date takes ms
    if (!isNaN(pushedAt)) {
      var raced = new Date(pushedAt - RACE_MS).toISOString();
      if (raced > cursor) cursor = raced;
    }
    var url = api + "/widget/conversations/" + encodeURIComponent(conversation) + "/messages?" +
      new URLSearchParams({ site: site, visitor_id: visitor.id, after: cursor }).toString();
    fetch(url)
      .then(function (r) {
        if (r.status === 404 && conversation === visitor.conversation) {
          visitor.conversation = null;
          save();
          hangUp();
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (!data || data.conversation_id !== visitor.conversation) return;
        readOnce = true;
        data.messages.forEach(function (m) {
          show(m);
          if (m.received_at > after) after = m.received_at;
        });
        if (data.status === "closed") ended();
      })
      .catch(function () { /* offline for a moment: the next (re)connect reads it */ })
      .then(function () { reading = false; });
  }

  document.addEventListener("visibilitychange", listen);
  if (visitor.ended && visitor.conversation && !panel.hidden) catchUp();  // the history, and that it ended
  if (panel.hidden && chatting()) catchUp();  // once per page: what came while the visitor browsed (the badge)
  listen();
})();
