//! The website channel end to end, in headless Chromium through ChromeDriver, against the real
//! `switchboard run`: a customer asks, presses buttons and gets answers in their browser's
//! language; asks for a person, and an agent signs in to the console in a second browser,
//! claims, replies and closes while the customer sees each step; what either of them writes stays
//! text (no HTML injection); a reload and a server restart lose nothing and repeat nothing; the
//! widget works on an allowed site's page and not on another's; the chat works on a phone-sized
//! screen, with the keyboard only, with labels and a live region.
//!
//! Needs `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`);
//! `SKIP_BROWSER_TESTS=1` skips (loudly). With `SCREENSHOTS_DIR=<folder>`, saves
//! `widget.png`, `chat-phone.png` and `console.png` there (docs/screenshots in the repository).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use fantoccini::key::Key;
use serde_json::json;
use support::browser::{Browser, Look, Msg, Page, Server, account};
use switchboard_core::Lang;

const ALICE_PASSWORD: &str = "correct horse battery staple";

/// The first line of `intent`'s answer in `lang`, as the shipped pack renders it.
fn answer_start(intent: &str, lang: Lang) -> String {
    let full = support::answer(&support::okpay(), intent, lang);
    full.trim().lines().next().unwrap().trim().to_string()
}

/// Whether a transcript line (not a message being sent) from `from` says `text` exactly.
fn has_line(msgs: &[Msg], from: &str, text: &str) -> bool {
    msgs.iter().any(|m| m.from == from && !m.pending && m.id.is_some() && m.text == text)
}

/// The index of the first line from `from` containing `part`, after index `after`.
fn line_after(msgs: &[Msg], after: usize, from: &str, part: &str) -> Option<usize> {
    msgs.iter().enumerate().skip(after + 1).find(|(_, m)| m.from == from && m.id.is_some() && m.text.contains(part)).map(|(i, _)| i)
}

fn index_of(msgs: &[Msg], from: &str, text: &str) -> Option<usize> {
    msgs.iter().position(|m| m.from == from && m.id.is_some() && m.text == text)
}

/// The transcript ids the page shows, in page order.
fn ids(msgs: &[Msg]) -> Vec<i64> {
    msgs.iter().filter_map(|m| m.id).collect()
}

fn assert_in_order_once(msgs: &[Msg]) {
    let ids = ids(msgs);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "lines in transcript order, each once: {msgs:#?}");
}

/// Whether the chat's message log is scrolled to its end (it scrolls smoothly).
const SCROLLED_JS: &str = "var m = document.getElementById('messages'); return m.scrollTop + m.clientHeight >= m.scrollHeight - 2;";

/// Opens `/chat` and waits for the greeting and its buttons.
async fn open_chat(page: &Page, server: &Server, greeting: &str) -> Vec<Msg> {
    page.goto(&server.url("/chat")).await;
    page.wait_online(support::browser::WAIT).await;
    let msgs = page.wait_messages("the greeting", |m| m.iter().any(|m| m.from == "bot" && m.text.contains(greeting))).await;
    page.find_shown("#choices button.choice").await;
    msgs
}

/// Types `text` in the composer and presses Enter.
async fn say(page: &Page, text: &str) {
    page.type_into("#input", text).await;
    page.type_into("#input", &Key::Enter.to_string()).await;
}

/// Says `text` and waits for it as a line, followed by a bot line containing `reply`.
async fn ask(page: &Page, text: &str, reply: &str) -> Vec<Msg> {
    say(page, text).await;
    page.wait_messages(&format!("{text:?} answered with {reply:?}"), |m| {
        let asked = m.iter().rposition(|x| x.from == "customer" && x.id.is_some() && x.text == text);
        asked.is_some_and(|i| line_after(m, i, "bot", reply).is_some()) && !m.iter().any(|x| x.pending)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_gets_answers_and_buttons_in_their_browsers_language() {
    let Some(browser) = Browser::start().await else { return };
    let server = Server::start("").await;

    // English: the greeting with buttons; the opening is not shown as something the customer said.
    let en = browser.open("customer (en)", Look::DESKTOP).await;
    let greeting = answer_start("greeting", Lang::En);
    let first = open_chat(&en, &server, &greeting).await;
    assert!(first.iter().all(|m| m.from == "bot"), "only the bot spoke: {first:#?}");
    assert_eq!(en.js("return document.activeElement.id").await, json!("input"), "the composer has the focus");

    // A question typed with the keyboard (Enter sends) gets the FAQ's answer.
    let pending = answer_start("transfer_pending", Lang::En);
    let msgs = ask(&en, "my transfer is still pending", &pending).await;
    assert_eq!(en.js("return document.getElementById('input').value").await, json!(""), "the composer is emptied");
    assert_in_order_once(&msgs);

    // Its follow-up buttons: pressing one answers that intent.
    let choices = en
        .eventually("follow-up buttons", || async {
            let c = en.choices().await;
            c.iter().any(|(_, p)| p.starts_with("intent:")).then_some(c)
        })
        .await;
    let (label, payload) = choices.iter().find(|(_, p)| p.starts_with("intent:")).unwrap().clone();
    let intent = payload.strip_prefix("intent:").unwrap().to_string();
    let expected = answer_start(&intent, Lang::En);
    let before = msgs.len();
    en.click(&format!("#choices button.choice[data-payload={payload:?}]")).await;
    let msgs = en
        .wait_messages(&format!("the answer of the button {label:?} ({intent})"), |m| {
            m.len() > before && line_after(m, before - 1, "bot", &expected).is_some() && !m.iter().any(|x| x.pending)
        })
        .await;
    assert_in_order_once(&msgs);
    assert!(!en.choices().await.iter().any(|(_, p)| *p == payload), "the pressed button is gone: {:?}", en.choices().await);

    // Chinese: a browser in zh-CN gets the page's words and the bot's answers in Chinese.
    let zh = browser.open("customer (zh-CN)", Look { lang: Some("zh-CN"), ..Look::DESKTOP }).await;
    let greeting = answer_start("greeting", Lang::Zh);
    open_chat(&zh, &server, &greeting).await;
    let language = zh.js("return navigator.language").await;
    assert!(language.as_str().unwrap_or_default().starts_with("zh"), "navigator.language: {language}");
    assert_eq!(zh.js("return document.documentElement.lang").await, json!("zh"));
    assert_eq!(zh.text_of("#send").await.as_deref(), Some("发送"));
    assert_eq!(zh.js("return document.getElementById('input').placeholder").await, json!("输入你的问题…"));
    let labels = zh.choices().await;
    assert!(labels.iter().all(|(l, _)| l.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))), "Chinese buttons: {labels:?}");
    ask(&zh, "转账一直显示处理中", &answer_start("transfer_pending", Lang::Zh)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_over_in_the_console_and_what_anyone_writes_stays_text() {
    let Some(browser) = Browser::start().await else { return };
    let server = Server::start(&account("alice", ALICE_PASSWORD)).await;

    // The customer, on a phone, asks a question and then for a person.
    let customer = browser.open("customer", Look::PHONE).await;
    open_chat(&customer, &server, &answer_start("greeting", Lang::En)).await;
    ask(&customer, "my transfer is still pending", &answer_start("transfer_pending", Lang::En)).await;
    ask(&customer, "I want to talk to a human", "you are number 1 in the queue").await;

    // The agent signs in to the console in another browser and sees the ticket.
    let agent = browser.open("agent", Look::DESKTOP).await;
    agent.goto(&server.url("/console")).await;
    agent.find_shown("#signin-form").await;
    agent.type_into("#signin-name", "alice").await;
    agent.type_into("#signin-password", ALICE_PASSWORD).await;
    agent.click("#signin-submit").await;
    agent.wait_js("#whoami naming alice", "var w = document.getElementById('whoami'); return w && /alice/.test(w.textContent)").await;
    agent.find_shown("#queue li.ticket[data-ticket]").await;
    let id = agent.attr_of("#queue li.ticket[data-ticket]", "data-ticket").await;
    assert_eq!(agent.js("return document.querySelectorAll('#queue li.ticket').length").await, json!(1));
    agent.click(&format!("#queue li.ticket[data-ticket=\"{id}\"] button")).await;
    agent.find_shown(&format!("#ticket[data-ticket=\"{id}\"]")).await;
    let transcript_has = |from: &'static str, text: String| {
        format!(
            "return Array.from(document.querySelectorAll('#transcript .line[data-from={from}] .text')).some(function (t) {{ return t.textContent === {text:?}; }})"
        )
    };
    agent.wait_js("the customer's messages in #transcript", &transcript_has("customer", "I want to talk to a human".into())).await;
    agent.wait_js("the customer's question in #transcript", &transcript_has("customer", "my transfer is still pending".into())).await;
    assert!(agent.text_of("#ticket-status").await.unwrap_or_default().contains("queue"), "queued before the claim");

    // Claim, reply: the customer sees the agent's line.
    agent.click("#claim").await;
    agent
        .wait_js(
            "the ticket assigned to alice",
            "var s = document.getElementById('ticket-status'); return s.dataset.status === 'assigned' && /you/.test(s.textContent)",
        )
        .await;
    let hello = "Hi, I'm Alice from OKPay. I can see your transfer: let me check it with our payments team.";
    agent.type_into("#reply-text", hello).await;
    agent.click("#reply-send").await;
    let msgs = customer.wait_messages("the agent's reply", |m| has_line(m, "agent", hello)).await;
    assert_in_order_once(&msgs);
    customer
        .wait_js(
            "the agent's line labelled as the agent",
            "var l = document.querySelector('#messages li.msg[data-from=agent] .who'); return l && l.textContent === 'Agent'",
        )
        .await;

    // The customer answers; the agent sees it live, without reloading the console.
    agent.js("window.__sameConsole = true").await;
    let thanks = "Thanks! It was 50 EUR, sent yesterday at 9am.";
    say(&customer, thanks).await;
    customer.wait_messages("the customer's answer stored", |m| has_line(m, "customer", thanks)).await;
    agent
        .eventually_within("the customer's answer in #transcript (live: before the 15 s poll)", Duration::from_secs(10), || async {
            let v = agent.client.execute(&transcript_has("customer", thanks.into()), Vec::new()).await.ok()?;
            (v == json!(true)).then_some(())
        })
        .await;
    assert_eq!(agent.js("return window.__sameConsole === true").await, json!(true), "the console was not reloaded");
    customer.wait_js("the last message scrolled into view", SCROLLED_JS).await;
    customer.screenshot("chat-phone.png").await;
    agent.js("document.activeElement.blur(); window.scrollTo(0, 0); var t = document.getElementById('transcript'); t.scrollTop = t.scrollHeight;").await;
    agent.wait_js("the console scrolled to its top", "return window.scrollY === 0").await;
    agent.screenshot("console.png").await;

    // HTML from the agent is shown as text on the customer's page.
    let injected = "Hello from Alice <img src=x onerror=window.__xss=1>";
    agent.type_into("#reply-text", injected).await;
    agent.click("#reply-send").await;
    let msgs = customer.wait_messages("the agent's HTML as text", |m| has_line(m, "agent", injected)).await;
    let i = index_of(&msgs, "agent", injected).unwrap();
    let shown = customer.text_of(&format!("#messages > li.msg[data-id=\"{}\"] .text", msgs[i].id.unwrap())).await;
    assert_eq!(shown.as_deref(), Some(injected), "rendered as the literal text");
    agent.wait_js("the agent's HTML as text in #transcript", &transcript_has("agent", injected.into())).await;

    // HTML from the customer is shown as text on both pages.
    let evil = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>";
    say(&customer, evil).await;
    let msgs = customer.wait_messages("the customer's HTML as text", |m| has_line(m, "customer", evil)).await;
    let i = index_of(&msgs, "customer", evil).unwrap();
    let shown = customer.text_of(&format!("#messages > li.msg[data-id=\"{}\"] .text", msgs[i].id.unwrap())).await;
    assert_eq!(shown.as_deref(), Some(evil));
    agent.wait_js("the customer's HTML as text in #transcript", &transcript_has("customer", evil.into())).await;
    let line = agent
        .js(&format!(
            "var t = Array.from(document.querySelectorAll('#transcript .line[data-from=customer] .text')).filter(function (t) {{ return t.textContent === {evil:?}; }})[0]; return t.innerText;"
        ))
        .await;
    assert_eq!(line, json!(evil), "rendered as the literal text in the console");

    // Close: the customer is back with the bot and asked for a rating.
    agent.click("#close").await;
    agent.wait_js("the ticket closed", "return document.getElementById('ticket-status').dataset.status === 'closed'").await;
    let back = "Our team has closed this conversation";
    let msgs = customer
        .wait_messages("the bot's return and the rating question", |m| {
            let b = m.iter().position(|x| x.from == "bot" && x.text.contains(back));
            b.is_some_and(|b| line_after(m, b.saturating_sub(1), "bot", "How would you rate").is_some())
        })
        .await;
    assert_in_order_once(&msgs);
    let rating = customer
        .eventually("the rating buttons", || async {
            let c = customer.choices().await;
            (c.len() == 5).then_some(c)
        })
        .await;
    assert!(rating.iter().all(|(_, p)| p.starts_with("rate:")), "{rating:?}");
    agent.wait_js("an empty queue", "return document.querySelectorAll('#queue li.ticket').length === 0").await;

    // Nothing written ran or became an element, on either page.
    for page in [&customer, &agent] {
        let found = page
            .js("return { xss: typeof window.__xss, img: document.querySelectorAll('#messages img, #transcript img').length, script: document.querySelectorAll('#messages script, #transcript script').length }")
            .await;
        assert_eq!(found, json!({ "xss": "undefined", "img": 0, "script": 0 }), "{}: injected HTML", page.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_and_a_server_restart_lose_nothing_and_repeat_nothing() {
    let Some(browser) = Browser::start().await else { return };
    let mut server = Server::start("").await;
    let page = browser.open("customer", Look::DESKTOP).await;
    open_chat(&page, &server, &answer_start("greeting", Lang::En)).await;
    ask(&page, "my transfer is still pending", &answer_start("transfer_pending", Lang::En)).await;
    ask(&page, "my account is locked", &answer_start("account_locked", Lang::En)).await;
    let before = page.messages().await;
    assert_in_order_once(&before);
    assert!(before.len() >= 5, "{before:#?}");

    // A reload shows the same lines, in the same order, once.
    page.client.refresh().await.unwrap();
    page.wait_online(support::browser::WAIT).await;
    page.wait_messages("the same lines after a reload", |m| m == before.as_slice()).await;

    // The server stops; a message written meanwhile waits on the page.
    server.stop().await;
    page.eventually("the page to notice the server is gone", || async { (page.chat_state().await != "online").then_some(()) }).await;
    let offline = "my transfer failed";
    say(&page, offline).await;
    let msgs = page.wait_messages("the message pending", |m| m.iter().any(|x| x.pending && x.text == offline)).await;
    assert!(page.find_shown("li.msg.pending[data-client]").await.text().await.unwrap().contains(offline));
    assert_eq!(msgs.iter().filter(|m| !m.pending).collect::<Vec<_>>(), before.iter().collect::<Vec<_>>());

    // It starts again on the same port and data: the page reconnects by itself, the message is
    // delivered once and answered.
    server.start_again().await;
    page.wait_online(Duration::from_secs(40)).await;
    let failed = answer_start("transfer_failed", Lang::En);
    let after = page
        .eventually_within("the pending message delivered and answered", Duration::from_secs(40), || async {
            let m = page.messages().await;
            let i = index_of(&m, "customer", offline)?;
            (line_after(&m, i, "bot", &failed).is_some() && !m.iter().any(|x| x.pending)).then_some(m)
        })
        .await;
    assert_eq!(after.iter().filter(|m| m.text == offline).count(), 1, "delivered once: {after:#?}");
    assert_eq!(&after[..before.len()], before.as_slice(), "the earlier lines unchanged");
    assert_in_order_once(&after);
    assert_eq!(page.js("return localStorage.getItem('sb.pending')").await, json!("[]"), "nothing left to send");

    // A reload after that still shows everything once, in order.
    page.client.refresh().await.unwrap();
    page.wait_online(support::browser::WAIT).await;
    page.wait_messages("the same lines after the restart and a reload", |m| m == after.as_slice()).await;
    // And the conversation goes on where it was.
    let more = ask(&page, "thanks", "").await;
    assert_eq!(&more[..after.len()], after.as_slice());
    assert_in_order_once(&more);
    assert!(server.logs().matches("HTTP server listening").count() == 2, "{}", server.logs());
}

/// A site of the company's own: serves, on `listener`, a page that loads the widget from the bot
/// on port `bot`. Reached as `localhost` or as `127.0.0.1`, it is two origins.
fn host_site(listener: tokio::net::TcpListener, bot: u16) {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>OKPay — Help centre</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}}\
         header{{background:#0b3d91;color:#fff;padding:18px 40px;font-weight:600;font-size:20px}}\
         main{{max-width:760px;padding:24px 40px}}h1{{font-size:28px}}li{{margin:6px 0}}</style></head>\
         <body><header>OKPay</header><main><h1>Help centre</h1>\
         <p>Find answers about your account, transfers and security, or chat with us: the button at the bottom right.</p>\
         <ul><li>Why is my transfer still pending?</li><li>My account is locked</li><li>I didn't get the reset email</li></ul>\
         </main><script src=\"http://127.0.0.1:{bot}/widget.js\" async></script></body></html>"
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let page = page.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 8192];
                let mut read = 0;
                while read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let (status, body) = if buf.starts_with(b"GET / ") { ("200 OK", page.as_str()) } else { ("404 Not Found", "") };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}

/// From the page's own origin, opens the chat's socket and says hello: `"welcome"` if the bot
/// answers, `"refused"` if the socket is closed first.
async fn try_socket(page: &Page, bot: u16) -> String {
    let script = "var done = arguments[arguments.length - 1]; var ws = new WebSocket(arguments[0]); var over = false; \
         function end(v) { if (!over) { over = true; try { ws.close(); } catch (e) {} done(v); } } \
         ws.onopen = function () { ws.send(JSON.stringify({ type: 'hello', after: 0 })); }; \
         ws.onmessage = function (e) { try { end(JSON.parse(e.data).type === 'welcome' ? 'welcome' : 'other'); } catch (x) { end('other'); } }; \
         ws.onerror = function () { end('refused'); }; ws.onclose = function () { end('refused'); }; \
         setTimeout(function () { end('timeout'); }, 10000);";
    let v = page.client.execute_async(script, vec![json!(format!("ws://127.0.0.1:{bot}/chat/ws"))]).await.unwrap();
    v.as_str().unwrap_or_default().to_string()
}

/// In the widget's frame (entered): what its document is, once it has loaded something.
const FRAME_JS: &str = "return document.readyState === 'complete' && location.href !== 'about:blank' \
     ? { url: location.href, input: !!document.getElementById('input') } : null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_works_on_an_allowed_site_and_not_on_another() {
    let Some(browser) = Browser::start().await else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap().port();
    let server = Server::start(&format!("[web]\nallowed_origins = [\"http://localhost:{site}\"]\n")).await;
    host_site(listener, server.port);

    // On the allowed site: the bubble opens the chat in a frame, which answers.
    let page = browser.open("visitor", Look::DESKTOP).await;
    page.goto(&format!("http://localhost:{site}/")).await;
    page.click("#switchboard-bubble").await;
    let frame = page.find_shown("iframe#switchboard-frame").await;
    assert_eq!(page.js("return document.getElementById('switchboard-bubble').getAttribute('aria-expanded')").await, json!("true"));
    frame.enter_frame().await.unwrap();
    open_chat_here(&page, &answer_start("greeting", Lang::En)).await;
    let locked = answer_start("account_locked", Lang::En);
    ask(&page, "my account is locked", &locked).await;
    page.find_shown("#choices button.choice").await;
    assert_eq!(
        page.js("return document.body.classList.contains('embedded') && !document.getElementById('close').hidden").await,
        json!(true)
    );
    page.wait_js("the answer scrolled into view", SCROLLED_JS).await;
    page.client.enter_parent_frame().await.unwrap();
    page.screenshot("widget.png").await;
    assert_eq!(try_socket(&page, server.port).await, "welcome", "an allowed site's page may open the socket");

    // On another site (the same page as http://127.0.0.1:<port>): the frame is refused
    // (frame-ancestors), and so is the socket.
    let other = browser.open("visitor elsewhere", Look::DESKTOP).await;
    other.goto(&format!("http://127.0.0.1:{site}/")).await;
    other.click("#switchboard-bubble").await;
    let frame = other.find_shown("iframe#switchboard-frame").await;
    frame.enter_frame().await.unwrap();
    let loaded = other.wait_js("the frame to load something", FRAME_JS).await;
    assert_eq!(loaded["input"], json!(false), "the chat must not show in a frame of a site not allowed: {loaded}");
    assert!(!loaded["url"].as_str().unwrap_or_default().contains("/chat"), "the frame holds an error page: {loaded}");
    other.client.enter_parent_frame().await.unwrap();
    assert_eq!(try_socket(&other, server.port).await, "refused", "a page of a site not allowed may not open the socket");
    assert!(server.logs().contains("refused a chat from a site not in web.allowed_origins"), "{}", server.logs());
}

/// Waits, in the current frame, for the chat to be online with the greeting and its buttons.
async fn open_chat_here(page: &Page, greeting: &str) {
    page.wait_online(support::browser::WAIT).await;
    page.wait_messages("the greeting", |m| m.iter().any(|m| m.from == "bot" && m.text.contains(greeting))).await;
    page.find_shown("#choices button.choice").await;
}

/// What has the keyboard focus: `#id`, `choice` (a suggested reply) or the tag.
const FOCUS_JS: &str = "var a = document.activeElement; if (!a || a === document.body) return 'body'; \
     if (a.classList.contains('choice')) return 'choice'; return a.id ? '#' + a.id : a.tagName.toLowerCase();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_works_on_a_phone_with_the_keyboard_and_a_screen_reader() {
    let Some(browser) = Browser::start().await else { return };
    let server = Server::start("").await;
    let page = browser.open("customer (phone)", Look::PHONE).await;
    open_chat(&page, &server, &answer_start("greeting", Lang::En)).await;
    assert_eq!(page.js("return [window.innerWidth, window.innerHeight]").await, json!([390, 844]), "a phone-sized viewport");

    // What a screen reader needs: a live log of messages, labelled controls, status and alerts.
    let a11y = page
        .js("var m = document.getElementById('messages'), l = document.querySelector('label[for=input]'), c = document.getElementById('choices'); \
             return { role: m.getAttribute('role'), live: m.getAttribute('aria-live'), label: l ? l.textContent.trim() : '', \
             choices: c.getAttribute('role') + ':' + (c.getAttribute('aria-label') || ''), status: document.getElementById('status').getAttribute('role'), \
             error: document.getElementById('error').getAttribute('role'), send: document.getElementById('send').textContent.trim(), \
             inLog: document.querySelectorAll('#messages > li.msg').length > 0 };")
        .await;
    assert_eq!(
        a11y,
        json!({ "role": "log", "live": "polite", "label": "Your message", "choices": "group:Suggested replies", "status": "status",
                "error": "alert", "send": "Send", "inLog": true })
    );

    // Keyboard only: the focus starts in the composer; Enter sends; Tab reaches Send; Shift+Tab
    // goes back through the suggested replies to the message log.
    assert_eq!(page.js(FOCUS_JS).await, json!("#input"));
    ask(&page, "my transfer is still pending", &answer_start("transfer_pending", Lang::En)).await;
    page.find_shown("#choices button.choice").await;
    assert_eq!(page.js(FOCUS_JS).await, json!("#input"), "the focus stays in the composer after sending");
    page.press(Key::Tab, false).await;
    assert_eq!(page.js(FOCUS_JS).await, json!("#send"), "Tab from the composer reaches Send");
    page.press(Key::Tab, true).await;
    assert_eq!(page.js(FOCUS_JS).await, json!("#input"));
    let mut seen = Vec::new();
    for _ in 0..8 {
        page.press(Key::Tab, true).await;
        let f = page.js(FOCUS_JS).await.as_str().unwrap_or_default().to_string();
        seen.push(f.clone());
        if f == "#messages" {
            break;
        }
    }
    assert!(seen.first().is_some_and(|f| f == "choice"), "Shift+Tab from the composer reaches a suggested reply: {seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("#messages"), "and then the message log: {seen:?}");
    // A suggested reply pressed with the keyboard.
    page.press(Key::Tab, false).await;
    assert_eq!(page.js(FOCUS_JS).await, json!("choice"));
    let payload = page.js("return document.activeElement.dataset.payload").await.as_str().unwrap_or_default().to_string();
    let intent = payload.strip_prefix("intent:").unwrap_or_else(|| panic!("a topic button first: {payload}")).to_string();
    let before = page.messages().await.len();
    page.press(Key::Enter, false).await;
    let expected = answer_start(&intent, Lang::En);
    page.wait_messages(&format!("the answer of {intent} after Enter on its button"), |m| {
        m.len() > before && line_after(m, before - 1, "bot", &expected).is_some() && !m.iter().any(|x| x.pending)
    })
    .await;
    assert_eq!(page.js(FOCUS_JS).await, json!("#input"), "the focus goes back to the composer after a button");

    // On the phone's screen: the composer and the last message are in view, nothing overflows sideways.
    let layout = page
        .wait_js("the last message scrolled into view", "var m = document.getElementById('messages'); \
             if (m.scrollTop + m.clientHeight < m.scrollHeight - 2) return null; \
             var r = function (e) { var b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; }; \
             var last = document.querySelector('#messages > li.msg:last-child'); \
             return { w: innerWidth, h: innerHeight, scrollW: document.documentElement.scrollWidth, scrollH: document.documentElement.scrollHeight, bar: r(document.querySelector('.bar')), composer: r(document.getElementById('composer')), \
             input: r(document.getElementById('input')), send: r(document.getElementById('send')), last: r(last), log: r(m) };")
        .await;
    let rect = |k: &str| -> Vec<f64> { layout[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
    let (w, h) = (layout["w"].as_f64().unwrap(), layout["h"].as_f64().unwrap());
    for k in ["bar", "composer", "input", "send", "last"] {
        let r = rect(k);
        assert!(r[0] >= -0.5 && r[1] >= -0.5 && r[2] <= w + 0.5 && r[3] <= h + 0.5, "{k} within the 390×844 viewport: {layout}");
        assert!(r[2] - r[0] > 1.0 && r[3] - r[1] > 1.0, "{k} has a size: {layout}");
    }
    let (last, log) = (rect("last"), rect("log"));
    assert!(last[1] >= log[1] - 0.5 && last[3] <= log[3] + 0.5, "the last message within the message log's visible part: {layout}");
    assert!(layout["scrollW"].as_f64().unwrap() <= w + 0.5, "no sideways scrolling: {layout}");
    assert!(layout["scrollH"].as_f64().unwrap() <= h + 0.5, "the chat fits the screen: only the message log scrolls: {layout}");
    let send = rect("send");
    assert!(send[2] - send[0] >= 44.0 && send[3] - send[1] >= 24.0, "a Send button large enough to tap: {layout}");
}
