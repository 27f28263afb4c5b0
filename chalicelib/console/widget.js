/*
 * Switchboard web-chat widget. Paste into a site:
 *   <script src="https://API/widget.js" data-site="acme" data-api="https://API"></script>
 * data-api defaults to where this script came from. Optional: data-title, data-name (the visitor's name),
 * data-ws (the WebSocket URL; the script as the API serves it names the deployment's).
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
    ended: !!saved.ended };
  function save() {
    try {
      localStorage.setItem(storeKey, JSON.stringify({ visitor_id: visitor.id, conversation_id: visitor.conversation,
        ended: visitor.ended, open: !panel.hidden }));
    } catch (_) { /* private mode: the chat lasts as long as the page */ }
  }

  var css =
    ".sbw-bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#2457d6;color:#fff;display:flex;align-items:center;justify-content:center;cursor:pointer;box-shadow:0 4px 12px rgba(0,0,0,.25);z-index:2147483000}" +
    ".sbw-panel{position:fixed;right:20px;bottom:88px;width:320px;max-height:460px;display:flex;flex-direction:column;" +
    "background:#fff;border:1px solid #e5e7eb;border-radius:12px;box-shadow:0 8px 24px rgba(0,0,0,.2);" +
    "font:14px/1.4 system-ui,sans-serif;color:#1d2330;z-index:2147483000}" +
    ".sbw-panel[hidden]{display:none}" +
    ".sbw-head{padding:10px 14px;background:#2457d6;color:#fff;border-radius:12px 12px 0 0;font-weight:600}" +
    ".sbw-log{flex:1;overflow:auto;padding:10px;display:flex;flex-direction:column;gap:6px;min-height:180px}" +
    ".sbw-msg{max-width:80%;padding:6px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".sbw-visitor{align-self:flex-end;background:#2457d6;color:#fff}" +
    ".sbw-agent{align-self:flex-start;background:#f1f5f9}" +
    ".sbw-bot{align-self:flex-start;background:#f1f5f9}" +
    ".sbw-choices{display:flex;gap:6px;flex-wrap:wrap}" +
    ".sbw-choice{border:1px solid #cbd5e1;border-radius:12px;background:#fff;padding:4px 10px;cursor:pointer}" +
    ".sbw-system,.sbw-status{align-self:center;background:#fffbeb;font-size:12px}" +
    ".sbw-status{padding:4px 10px;border-radius:10px;color:#6b7280;background:none}" +
    ".sbw-form{display:flex;border-top:1px solid #e5e7eb}" +
    ".sbw-form input{flex:1;border:0;padding:10px;font:inherit;outline:none}" +
    ".sbw-form button{border:0;background:none;color:#2457d6;font:inherit;font-weight:600;padding:0 12px;cursor:pointer}" +
    ".sbw-error{color:#b91c1c;font-size:12px;padding:0 10px}";
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
  bubble.setAttribute("aria-label", title);
  bubble.setAttribute("data-testid", "widget-bubble");
  var panel = node("div", "sbw-panel");
  panel.hidden = true;
  panel.setAttribute("data-testid", "widget-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var log = node("div", "sbw-log");
  log.setAttribute("data-testid", "widget-log");
  log.setAttribute("aria-live", "polite");
  var error = node("div", "sbw-error");
  error.setAttribute("data-testid", "widget-error");
  var form = node("form", "sbw-form");
  var input = node("input");
  input.placeholder = "Type a message";
  input.setAttribute("data-testid", "widget-input");
  input.maxLength = 4000;
  var send = node("button", null, "Send");
  send.type = "submit";
  send.setAttribute("data-testid", "widget-send");
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(node("div", "sbw-head", title));
  panel.appendChild(log);
  panel.appendChild(error);
  panel.appendChild(form);
  document.body.appendChild(panel);
  document.body.appendChild(bubble);
  panel.hidden = !saved.open;
  save();

  var shown = {};
  var after = "";  // the newest received_at a read gave
  var pushedUpTo = "";  // the newest received_at pushed on the socket
  function show(message) {
    if (shown[message.message_id]) return;
    shown[message.message_id] = true;
    var line = node("div", "sbw-msg sbw-" + message.from, message.text);
    line.setAttribute("data-testid", "widget-message");
    line.setAttribute("data-from", message.from);
    log.appendChild(line);
    if (choicesShown) { choicesShown.remove(); choicesShown = null; }
    if (message.choices && message.choices.length) showChoices(message.choices);
    log.scrollTop = log.scrollHeight;
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

  bubble.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    save();
    if (!panel.hidden) input.focus();
    if (!panel.hidden && visitor.ended && !readOnce) catchUp();  // the ended chat's history, once
    listen();
  });

  var pending = null;  // the message being sent: { text, message_id } until the server took it
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    // Sending the same text again after a failure is a retry: same message_id, so the server stores it once.
    if (!pending || pending.text !== text) pending = { text: text, message_id: randomId("m_") };
    var body = { site: site, visitor_id: visitor.id, message_id: pending.message_id, text: text };
    if (visitorName) body.name = visitorName;
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
        error.textContent = "";
        if (data.conversation_id !== visitor.conversation) {
          hangUp();  // the socket listened to the old conversation
          visitor.conversation = data.conversation_id;
          visitor.ended = false;
          after = "";
          pushedUpTo = "";
          save();
        }
        if (data.message) show(data.message);  // as the server stored it: no read back
        listen();
      })
      .catch(function (err) { error.textContent = "Not sent: " + err.message; })
      .then(function () { send.disabled = false; });
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
        show(frame.message);
        if (frame.message.received_at > pushedUpTo) pushedUpTo = frame.message.received_at;
      }
      else if (frame.type === "status" && frame.status === "closed") ended();
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
  listen();
})();
