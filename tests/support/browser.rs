//! End-to-end tests in a real browser: headless Chromium driven through ChromeDriver (WebDriver,
//! with `fantoccini`), against the real `switchboard run` with a temporary configuration.
//!
//! - [`Browser`]: one `chromedriver` on a free port (`CHROMEDRIVER` names another binary,
//!   `CHROMIUM` another browser), killed with its browsers when dropped. Missing, it fails the
//!   test and says what to install, unless `SKIP_BROWSER_TESTS=1`.
//! - [`Page`]: one browser session, with waits that poll until a deadline (never a fixed sleep)
//!   and, when they time out, say what the page showed.
//! - [`Server`]: the binary with `http_listen` on a free port and its own data folder; it can be
//!   stopped and started again on the same port and data.

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a page has to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);
/// How long the binary may take to start (a debug build trains the pack at start).
const START: Duration = Duration::from_secs(90);

const INSTALL: &str = "the browser tests need Chromium and ChromeDriver: `apt-get install chromium chromium-driver` \
     (or set CHROMIUM and CHROMEDRIVER to their paths; SKIP_BROWSER_TESTS=1 skips these tests)";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `name` as a path: itself if it has a slash, else found on `PATH`.
fn locate(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// `GET path` on 127.0.0.1:`port`: the status and the body (as long as its `Content-Length`
/// says, or until the connection closes: ChromeDriver keeps it open), within 5 s.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let get = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await?;
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok());
                if n == 0 || length.is_some_and(|l| body.len() >= l) {
                    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                    return Ok((status, body.to_string()));
                }
            }
            if n == 0 {
                return Err(std::io::Error::other("no end of headers"));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), get).await.map_err(|_| std::io::Error::other("no answer within 5 s"))?
}

/// One ChromeDriver and the browsers it starts.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    chromium: PathBuf,
    sessions: Mutex<Vec<String>>,
    /// Dropped after [`Drop::drop`] ends the browsers.
    _tmp: tempfile::TempDir,
}

/// How a browser session looks: its window and language.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub width: u32,
    pub height: u32,
    /// A phone: the page is laid out as on a touch phone (mobile viewport), at 2 device pixels a pixel.
    pub phone: bool,
    /// The browser's language (`--lang` and the `Accept-Language` preference).
    pub lang: Option<&'static str>,
}

impl Look {
    /// A desktop window, 1280×900, in English.
    pub const DESKTOP: Look = Look { width: 1280, height: 900, phone: false, lang: Some("en-US") };
    /// A phone, 390×844 CSS pixels, in English.
    pub const PHONE: Look = Look { width: 390, height: 844, phone: true, lang: Some("en-US") };
}

impl Browser {
    /// Starts ChromeDriver; `None` (after a loud note) when `SKIP_BROWSER_TESTS=1`. Fails
    /// the test when Chromium or ChromeDriver is missing.
    pub async fn start() -> Option<Browser> {
        if std::env::var("SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("\n*** SKIP_BROWSER_TESTS=1: the browser end-to-end tests are SKIPPED (nothing was checked) ***\n");
            return None;
        }
        let driver_name = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium_name = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let Some(driver) = locate(&driver_name) else { panic!("no ChromeDriver at {driver_name:?}: {INSTALL}") };
        let Some(chromium) = locate(&chromium_name) else { panic!("no Chromium at {chromium_name:?}: {INSTALL}") };
        let port = free_port();
        // The browsers' profiles and sockets go in a folder of this browser's, removed with it.
        let tmp = tempfile::tempdir().expect("tempdir");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            // Its own process group: the browsers it starts are killed with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", driver.display()));
        let browser = Browser { driver: child, port, chromium, sessions: Mutex::new(Vec::new()), _tmp: tmp };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, body)) = http_get(port, "/status").await
                && body.contains("\"ready\":true")
            {
                return Some(browser);
            }
            assert!(Instant::now() < deadline, "ChromeDriver ({}) did not answer on port {port}", driver.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new browser session (a fresh profile: no cookies, no local storage).
    pub async fn open(&self, name: &'static str, look: Look) -> Page {
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-extensions".into(),
            "--disable-search-engine-choice-screen".into(),
            format!("--window-size={},{}", look.width.max(500), look.height),
        ];
        let mut options = json!({ "binary": self.chromium, "args": [] });
        if let Some(lang) = look.lang {
            args.push(format!("--lang={lang}"));
            options["prefs"] = json!({ "intl.accept_languages": lang });
        }
        if look.phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": look.width, "height": look.height, "pixelRatio": 2.0, "touch": true, "mobile": true }
            });
        }
        options["args"] = json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("no browser session for {name}: {e}; {INSTALL}"));
        if let Ok(Some(id)) = client.session_id().await {
            self.sessions.lock().unwrap().push(id);
        }
        if !look.phone {
            // The window's size is its outer size: grow it by the browser's frame, so that the
            // page's viewport is the size asked.
            if let Ok(inner) = client.execute("return [window.innerWidth, window.innerHeight]", Vec::new()).await
                && let (Some(w), Some(h)) = (inner[0].as_u64(), inner[1].as_u64())
                && let Ok((outer_w, outer_h)) = client.get_window_size().await
            {
                let width = u32::try_from(outer_w + u64::from(look.width)).unwrap_or(look.width).saturating_sub(w as u32);
                let height = u32::try_from(outer_h + u64::from(look.height)).unwrap_or(look.height).saturating_sub(h as u32);
                let _ = client.set_window_size(width, height).await;
            }
        }
        Page { client, name }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the sessions (each browser quits and removes its profile), then the driver and
        // whatever is left of its process group.
        for id in self.sessions.lock().map(|s| s.clone()).unwrap_or_default() {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                    self.port
                );
                if s.write_all(request.as_bytes()).is_ok() {
                    let _ = s.read_to_end(&mut Vec::new());
                }
            }
        }
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.driver.id())]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A message of the customer's chat page (`#messages > li.msg`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Msg {
    /// The transcript line's id (`data-id`); none while it is being sent.
    pub id: Option<i64>,
    pub from: String,
    pub pending: bool,
    pub text: String,
}

const MESSAGES_JS: &str = "return Array.from(document.querySelectorAll('#messages > li.msg')).map(function (li) { \
     var t = li.querySelector('.text'); return { id: li.dataset.id ? Number(li.dataset.id) : null, from: li.dataset.from || '', \
     pending: li.classList.contains('pending'), text: t ? t.textContent : '' }; });";

/// One browser session.
#[derive(Debug)]
pub struct Page {
    pub client: Client,
    pub name: &'static str,
}

impl Page {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{}: cannot open {url}: {e}", self.name));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns what it returns.
    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.name))
    }

    pub async fn js(&self, script: &str) -> Value {
        self.js_with(script, Vec::new()).await
    }

    /// What the page shows, for failure messages: its address and text.
    pub async fn dump(&self) -> String {
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let text = self
            .client
            .execute("return document.body ? document.body.innerText : ''", Vec::new())
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let text: String = text.chars().take(4000).collect();
        format!("--- {} at {url} shows:\n{text}\n---", self.name)
    }

    /// Polls `check` until it says `Some`, for at most `within`; else fails saying `what` and
    /// what the page shows.
    pub async fn eventually_within<T, F, Fut>(&self, what: &str, within: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("{}: timed out after {within:?} waiting for {what}\n{}", self.name, self.dump().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// [`Page::eventually_within`] the usual [`WAIT`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        self.eventually_within(what, WAIT, check).await
    }

    /// Polls `script` until it returns something other than `null`, `undefined` or `false`.
    pub async fn wait_js(&self, what: &str, script: &str) -> Value {
        self.eventually(what, || async {
            let v = self.client.execute(script, Vec::new()).await.ok()?;
            (!v.is_null() && v != Value::Bool(false)).then_some(v)
        })
        .await
    }

    /// The element `css`, once there is one.
    pub async fn find(&self, css: &str) -> Element {
        self.eventually(&format!("an element {css}"), || async { self.client.find(Locator::Css(css)).await.ok() }).await
    }

    /// The element `css`, once there is one and it is displayed.
    pub async fn find_shown(&self, css: &str) -> Element {
        self.eventually(&format!("a visible element {css}"), || async {
            let e = self.client.find(Locator::Css(css)).await.ok()?;
            e.is_displayed().await.ok()?.then_some(e)
        })
        .await
    }

    /// The text of the element `css` (as rendered), or `None` if there is none.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        self.client.find(Locator::Css(css)).await.ok()?.text().await.ok()
    }

    /// Clicks the element `css`, once it is there, displayed and enabled. The element is looked up
    /// again on each try, so a live redraw between finding and clicking it is not a failure.
    pub async fn click(&self, css: &str) {
        self.eventually(&format!("{css} to be clickable"), || async {
            let e = self.client.find(Locator::Css(css)).await.ok()?;
            if !(e.is_displayed().await.ok()? && e.is_enabled().await.ok()?) {
                return None;
            }
            e.click().await.ok()
        })
        .await;
    }

    /// The attribute `name` of the element `css`, once there is one that has it (looked up again
    /// on each try, as [`Page::click`]).
    pub async fn attr_of(&self, css: &str, name: &str) -> String {
        self.eventually(&format!("{css} with a {name} attribute"), || async {
            self.client.find(Locator::Css(css)).await.ok()?.attr(name).await.ok()?
        })
        .await
    }

    /// Types `text` into the element `css` with the keyboard.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find_shown(css).await;
        e.send_keys(text).await.unwrap_or_else(|err| panic!("{}: cannot type into {css}: {err}", self.name));
    }

    /// Presses and releases `key` (with Shift held if `shift`), wherever the focus is.
    pub async fn press(&self, key: Key, shift: bool) {
        let mut keys = KeyActions::new("keyboard".into());
        if shift {
            keys = keys.then(KeyAction::Down { value: char::from(Key::Shift) });
        }
        keys = keys.then(KeyAction::Down { value: char::from(key) }).then(KeyAction::Up { value: char::from(key) });
        if shift {
            keys = keys.then(KeyAction::Up { value: char::from(Key::Shift) });
        }
        self.client.perform_actions(keys).await.unwrap_or_else(|e| panic!("{}: cannot press a key: {e}", self.name));
    }

    /// The customer chat's messages, in page order.
    pub async fn messages(&self) -> Vec<Msg> {
        let v = self.js(MESSAGES_JS).await;
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{}: unreadable messages: {e}", self.name))
    }

    /// The chat's messages once `ready` holds for them.
    pub async fn wait_messages(&self, what: &str, ready: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
        self.eventually(what, || async {
            let v = self.client.execute(MESSAGES_JS, Vec::new()).await.ok()?;
            let msgs: Vec<Msg> = serde_json::from_value(v).ok()?;
            ready(&msgs).then_some(msgs)
        })
        .await
    }

    /// The chat's connection state (`#status[data-state]`).
    pub async fn chat_state(&self) -> String {
        self.js("var s = document.getElementById('status'); return s ? s.dataset.state : ''").await.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the chat page says it is connected.
    pub async fn wait_online(&self, within: Duration) {
        self.eventually_within("#status[data-state=online]", within, || async {
            self.client.find(Locator::Css("#status[data-state=online]")).await.ok().map(|_| ())
        })
        .await;
    }

    /// The labels and payloads of the chat's buttons (`#choices button.choice`).
    pub async fn choices(&self) -> Vec<(String, String)> {
        let v = self
            .js("return Array.from(document.querySelectorAll('#choices button.choice')).map(function (b) { return [b.textContent, b.dataset.payload || '']; });")
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    /// Saves a screenshot as `<SCREENSHOTS_DIR>/<file>` when that variable names a folder.
    pub async fn screenshot(&self, file: &str) {
        let Some(dir) = std::env::var_os("SCREENSHOTS_DIR") else { return };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("{}: no screenshot: {e}", self.name));
        std::fs::write(dir.join(file), png).expect("write the screenshot");
        eprintln!("saved {}", dir.join(file).display());
    }
}

/// A running `switchboard run` on its own port and data folder.
#[derive(Debug)]
pub struct Server {
    pub port: u16,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A `[[web.accounts]]` entry for `name` with `password`, hashed by `switchboard console-password`.
pub fn account(name: &str, password: &str) -> String {
    let mut child = own_env(Command::new(env!("CARGO_BIN_EXE_switchboard")))
        .arg("console-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write the password");
    let out = child.wait_with_output().expect("it exits");
    assert!(out.status.success(), "console-password failed: {}", String::from_utf8_lossy(&out.stderr));
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(hash.starts_with("$argon2"), "not a PHC string: {hash}");
    format!("\n[[web.accounts]]\nname = {name:?}\npassword_hash = {hash:?}\n")
}

/// `command` without the caller's settings for the binary: every `SWITCHBOARD_…` variable (the
/// binary reads them all as configuration and refuses names it does not know)
/// and the chat platforms' tokens.
fn own_env(mut command: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(key);
        }
    }
    command.env_remove("TELEGRAM_BOT_TOKEN").env_remove("DISCORD_TOKEN");
    command
}

impl Server {
    /// Starts the binary with `http_listen` on a free port, the shipped pack, the agent `web:alice`
    /// allowed, and `extra` (TOML: a `[web]` table, accounts) at the end of its configuration.
    pub async fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let config = dir.path().join("switchboard.toml");
        let body = format!(
            "http_listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\npack = {:?}\n\n[agents]\nallow = [\"web:alice\"]\n{extra}\n",
            dir.path().join("data").display().to_string(),
            root.join("intents/okpay").display().to_string(),
        );
        std::fs::write(&config, body).expect("write the configuration");
        let log = dir.path().join("switchboard.log");
        let mut server = Server { port, dir, config, log, child: None };
        server.start_again().await;
        server
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the binary logged so far (every run).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The data folder.
    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the binary (again) on the same port, configuration and data; returns once it logs
    /// that its HTTP server listens and `/chat` answers.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server runs already");
        let before = self.logs().matches("HTTP server listening").count();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("the log file");
        let child = own_env(Command::new(env!("CARGO_BIN_EXE_switchboard")))
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the binary runs");
        self.child = Some(child);
        let deadline = Instant::now() + START;
        loop {
            let logs = self.logs();
            if logs.matches("HTTP server listening").count() > before
                && logs.contains(&format!("127.0.0.1:{}", self.port))
                && matches!(http_get(self.port, "/chat").await, Ok((200, _)))
            {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("switchboard run exited ({status}) before serving; its log:\n{logs}");
            }
            assert!(Instant::now() < deadline, "switchboard run did not serve on port {} in {START:?}; its log:\n{logs}", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the binary as a service manager would (SIGTERM) and waits for it to exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("switchboard run did not stop within 20 s of SIGTERM; its log:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
