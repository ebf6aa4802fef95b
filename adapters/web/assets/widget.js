/* Switchboard chat widget loader. A site adds:
 *   <script src="https://bot.example.com/widget.js" async></script>
 * and gets a chat bubble; the panel is the bot's own /chat page in a frame (its styles and
 * scripts never mix with the site's, and the bot only lets the sites in web.allowed_origins
 * frame it). No framework, no build step. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.__switchboardWidget) return;
  window.__switchboardWidget = true;
  var base = new URL(me.src).origin;
  var zh = /^zh/i.test(navigator.language || "");
  var words = zh ? { open: "打开客服聊天", close: "关闭客服聊天", title: "客服聊天" }
                 : { open: "Open support chat", close: "Close support chat", title: "Support chat" };

  function css(el, rules) { for (var k in rules) el.style[k] = rules[k]; return el; }

  var bubble = css(document.createElement("button"), {
    position: "fixed", right: "20px", bottom: "20px", width: "60px", height: "60px",
    borderRadius: "50%", border: "0", background: "#1f6feb", color: "#fff", cursor: "pointer",
    boxShadow: "0 4px 14px rgba(0,0,0,.25)", zIndex: "2147483000", display: "flex", alignItems: "center", justifyContent: "center", padding: "0"
  });
  bubble.type = "button";
  bubble.id = "switchboard-bubble";
  bubble.setAttribute("aria-label", words.open);
  bubble.setAttribute("aria-expanded", "false");
  // A speech bubble drawn as SVG (no emoji font needed).
  var ns = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(ns, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "28");
  icon.setAttribute("height", "28");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(ns, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z");
  icon.appendChild(path);
  bubble.appendChild(icon);

  var frame = null;
  function place() {
    if (!frame) return;
    var small = window.innerWidth < 520;
    css(frame, small
      ? { right: "0", bottom: "0", width: "100%", height: "100%", borderRadius: "0" }
      : { right: "20px", bottom: "92px", width: "380px", height: "min(620px, calc(100vh - 120px))", borderRadius: "12px" });
  }
  function open() {
    if (!frame) {
      frame = css(document.createElement("iframe"), {
        position: "fixed", border: "0", background: "#fff", zIndex: "2147483001",
        boxShadow: "0 8px 30px rgba(0,0,0,.3)"
      });
      frame.id = "switchboard-frame";
      frame.title = words.title;
      frame.src = base + "/chat?embed=1";
      frame.allow = "clipboard-write";
      document.body.appendChild(frame);
      place();
    }
    frame.hidden = false;
    css(frame, { display: "block" });
    bubble.setAttribute("aria-expanded", "true");
    bubble.setAttribute("aria-label", words.close);
    frame.focus();
  }
  function close() {
    if (frame) css(frame, { display: "none" });
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", words.open);
    bubble.focus();
  }
  bubble.addEventListener("click", function () {
    bubble.getAttribute("aria-expanded") === "true" ? close() : open();
  });
  window.addEventListener("resize", place);
  window.addEventListener("message", function (e) {
    if (e.origin === base && e.data && e.data.type === "switchboard:close") close();
  });
  function mount() { document.body.appendChild(bubble); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
