/* Switchboard web chat: the page behind /chat and the widget's panel.
 * Talks to /chat/ws (protocol in adapters/web/src/chat.rs). Keeps a signed visitor token and the
 * messages not yet acknowledged in localStorage, so a reload, a dropped network or a server
 * restart loses nothing: it reconnects, catches up from the last line it has, and sends again
 * what was not acknowledged (same id: stored once). Every text is put on the page as text.
 * DOM for tests: #messages > li.msg[data-from=customer|bot|agent][data-id] .text,
 * li.msg.pending[data-client], #choices button.choice, #status[data-state], #error, #input, #send. */
(function () {
  "use strict";
  var zh = /^zh/i.test(navigator.language || "");
  var T = zh ? {
    connecting: "正在连接…", online: "在线", offline: "连接已断开，正在重连…", you: "你", bot: "助手", agent: "客服",
    placeholder: "输入你的问题…", send: "发送", label: "你的消息", sending: "发送中…", close: "关闭聊天",
    tooLong: function (n) { return "消息太长：请少于 " + n + " 个字符，或分几条发送。"; }, suggested: "建议的回复", messages: "消息"
  } : {
    connecting: "Connecting…", online: "Online", offline: "Connection lost — reconnecting…", you: "You", bot: "Assistant", agent: "Agent",
    placeholder: "Type your question…", send: "Send", label: "Your message", sending: "Sending…", close: "Close chat",
    tooLong: function (n) { return "This message is too long: keep it under " + n + " characters, or send it in parts."; },
    suggested: "Suggested replies", messages: "Messages"
  };
  var $ = function (id) { return document.getElementById(id); };
  var list = $("messages"), choices = $("choices"), input = $("input"), form = $("composer"), errorBox = $("error"), status = $("status");

  // Storage that survives a reload; memory where the browser refuses it.
  var mem = {};
  var keep = {
    get: function (k) { try { return localStorage.getItem(k); } catch (e) { return mem[k] || null; } },
    set: function (k, v) { try { localStorage.setItem(k, v); } catch (e) { mem[k] = v; } }
  };
  var pending = [];
  try { pending = JSON.parse(keep.get("sb.pending") || "[]") || []; } catch (e) { pending = []; }
  var last = 0, ws = null, inflight = null, backoff = 500, maxChars = 2000, synced = false, retryTimer = null;

  function savePending() { keep.set("sb.pending", JSON.stringify(pending)); }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }
  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = T[state];
  }
  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }
  function scrollDown() { list.scrollTop = list.scrollHeight; }

  function bubble(from, text, at) {
    var li = document.createElement("li");
    li.className = "msg";
    li.dataset.from = from;
    var who = document.createElement("span");
    who.className = from === "agent" ? "who" : "who visually-hidden";
    who.textContent = from === "customer" ? T.you : from === "agent" ? T.agent : T.bot;
    var body = document.createElement("p");
    body.className = "text";
    body.textContent = text;
    li.appendChild(who);
    li.appendChild(body);
    if (at) {
      var time = document.createElement("time");
      var d = new Date(at);
      time.dateTime = d.toISOString();
      time.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      li.appendChild(time);
    }
    return li;
  }
  function pendingBubble(p) {
    if (p.silent) return;
    var li = bubble("customer", p.kind === "choice" ? p.label : p.text);
    li.classList.add("pending");
    li.dataset.client = p.id;
    var note = document.createElement("span");
    note.className = "state";
    note.textContent = T.sending;
    li.appendChild(note);
    list.appendChild(li);
    scrollDown();
  }
  function dropPending(id) {
    pending = pending.filter(function (p) { return p.id !== id; });
    savePending();
    var el = list.querySelector('li.pending[data-client="' + CSS.escape(id) + '"]');
    if (el) el.remove();
  }
  function setChoices(items) {
    choices.replaceChildren();
    (items || []).forEach(function (c) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "choice";
      b.dataset.payload = c.payload;
      b.textContent = c.label;
      b.addEventListener("click", function () {
        setChoices([]);
        queue({ id: newId(), kind: "choice", payload: c.payload, label: c.label });
        input.focus();
      });
      choices.appendChild(b);
    });
  }
  function addLine(f) {
    if (f.id <= last) return; // seen already
    last = f.id;
    var li = bubble(f.from, f.text, f.at);
    li.dataset.id = String(f.id);
    // Lines go before the messages still being sent.
    var firstPending = list.querySelector("li.pending");
    list.insertBefore(li, firstPending);
    if (f.from === "bot" && f.choices && f.choices.length) setChoices(f.choices);
    else if (f.from !== "bot" || !f.choices || !f.choices.length) { if (f.from !== "bot") setChoices([]); }
    scrollDown();
  }

  function queue(p) {
    pending.push(p);
    savePending();
    pendingBubble(p);
    pump();
  }
  function frameOf(p) {
    return p.kind === "choice" ? { type: "choice", id: p.id, payload: p.payload } : { type: "send", id: p.id, text: p.text };
  }
  function pump() {
    if (!ws || ws.readyState !== 1 || !synced || inflight || retryTimer || !pending.length) return;
    inflight = pending[0].id;
    ws.send(JSON.stringify(frameOf(pending[0])));
  }

  function on(f) {
    switch (f.type) {
      case "welcome":
        if (f.fresh && last > 0) { list.replaceChildren(); last = 0; pending.forEach(pendingBubble); }
        keep.set("sb.token", f.token);
        $("chat-title").textContent = f.title;
        document.title = f.title;
        maxChars = f.max_chars;
        input.maxLength = maxChars;
        setStatus("online");
        backoff = 500;
        break;
      case "synced":
        synced = true;
        if (!list.querySelector("li.msg:not(.pending)") && !pending.length) {
          queue({ id: newId(), kind: "choice", payload: "start", label: "", silent: true });
        }
        pump();
        break;
      case "line":
        addLine(f);
        break;
      case "ack":
        if (f.id === inflight) inflight = null;
        dropPending(f.id);
        showError("");
        pump();
        break;
      case "error":
        showError(f.message);
        if (!f.id) break;
        if (f.id === inflight) inflight = null;
        if (f.retry_ms) {
          retryTimer = setTimeout(function () { retryTimer = null; pump(); }, f.retry_ms);
        } else {
          var p = pending.filter(function (x) { return x.id === f.id; })[0];
          dropPending(f.id);
          if (p && p.kind === "send" && !input.value) input.value = p.text;
          pump();
        }
        break;
    }
  }

  function connect() {
    setStatus("connecting");
    synced = false;
    inflight = null;
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var sock = new WebSocket(proto + "//" + location.host + "/chat/ws");
    ws = sock;
    sock.onopen = function () {
      sock.send(JSON.stringify({ type: "hello", token: keep.get("sb.token"), after: last, lang: navigator.language || null }));
    };
    sock.onmessage = function (e) {
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      on(f);
    };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      inflight = null;
      setStatus("offline");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (text.length > maxChars) { showError(T.tooLong(maxChars)); return; }
    showError("");
    input.value = "";
    queue({ id: newId(), kind: "send", text: text });
    input.focus();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  window.addEventListener("online", function () { if (!ws) { backoff = 500; connect(); } });

  // Words and the embedded panel's close button.
  document.documentElement.lang = zh ? "zh" : "en";
  input.placeholder = T.placeholder;
  $("send").textContent = T.send;
  $("input-label").textContent = T.label;
  list.setAttribute("aria-label", T.messages);
  choices.setAttribute("aria-label", T.suggested);
  if (new URLSearchParams(location.search).get("embed") === "1") {
    var close = $("close");
    close.hidden = false;
    close.setAttribute("aria-label", T.close);
    close.addEventListener("click", function () { parent.postMessage({ type: "switchboard:close" }, "*"); });
    document.body.classList.add("embedded");
  }
  pending.forEach(pendingBubble);
  connect();
  input.focus();
})();
