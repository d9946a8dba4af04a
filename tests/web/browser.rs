//! A small WebDriver client (W3C WebDriver over HTTP, spoken with reqwest)
//! driving Debian's headless Chromium through `chromedriver`, and a TCP
//! proxy the tests can cut to take a browser off the network.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Client;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The key W3C WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const WAIT: Duration = Duration::from_secs(15);

fn chromium() -> String {
    std::env::var("JT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("JT_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// Whether a browser can be driven here. In CI a missing browser fails the
/// test; locally the test is skipped with a loud message.
pub fn available(test: &str) -> bool {
    if std::path::Path::new(&chromium()).exists() && std::path::Path::new(&chromedriver()).exists()
    {
        return true;
    }
    let msg = format!(
        "{test}: no Chromium at {} or chromedriver at {} (install: apt-get install chromium chromium-driver)",
        chromium(),
        chromedriver()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI requires a browser");
    }
    eprintln!("!!! SKIPPED {msg} !!!");
    false
}

/// A running `chromedriver` on a free port; killed on drop.
pub struct Driver {
    child: tokio::process::Child,
    url: String,
    client: Client,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = tokio::process::Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{url}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url, client }
    }

    /// A new browser (its own profile: cookies, storage) with a viewport
    /// of `width` x `height` CSS pixels; below 500 px wide as a phone
    /// (Chrome's mobile emulation: a desktop window cannot be that narrow).
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut options = json!({
            "binary": chromium(),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--lang=ko-KR", "--force-device-scale-factor=1", "--hide-scrollbars",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        if width < 500 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "touch": true, "mobile": true},
            });
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let r: Value = self
            .client
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        let b = Browser {
            client: self.client.clone(),
            session: format!("{}/session/{id}", self.url),
            base: String::new(),
            _profile: profile,
        };
        if width >= 500 {
            // The viewport itself (not the window) at the size asked for.
            let inner = b
                .exec("return [window.innerWidth, window.innerHeight]", json!([]))
                .await;
            let (iw, ih) = (
                inner[0].as_u64().unwrap_or(0),
                inner[1].as_u64().unwrap_or(0),
            );
            if iw != u64::from(width) || ih != u64::from(height) {
                let w = (2 * u64::from(width)).saturating_sub(iw);
                let h = (2 * u64::from(height)).saturating_sub(ih);
                b.cmd("POST", "/window/rect", json!({"width": w, "height": h}))
                    .await;
            }
        }
        b
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub struct Browser {
    client: Client,
    session: String,
    /// The origin pages are loaded from (`http://127.0.0.1:PORT`).
    pub base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url).json(&body),
        };
        let r: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        if let Some(err) = r["value"]["error"].as_str() {
            panic!("webdriver {path}: {err}: {}", r["value"]["message"]);
        }
        r["value"].clone()
    }

    /// Open `path` (`/#/login`) on this browser's origin.
    pub async fn open(&mut self, base: &str, path: &str) {
        self.base = base.to_string();
        self.cmd("POST", "/url", json!({"url": format!("{base}{path}")}))
            .await;
        self.wait_js("return document.body.dataset.ready === 'true'", json!([]))
            .await;
    }

    /// Go to a hash route of the app (`/chats`) and wait until it rendered.
    pub async fn route(&self, route: &str) {
        self.exec(
            "document.body.dataset.ready = 'false'; \
             if (location.hash === '#' + arguments[0]) window.dispatchEvent(new HashChangeEvent('hashchange')); \
             else location.hash = '#' + arguments[0]; \
             return true",
            json!([route]),
        )
        .await;
        self.wait_js("return document.body.dataset.ready === 'true'", json!([]))
            .await;
    }

    /// Where the page's `navigator.geolocation` says the device is (Chrome
    /// DevTools through chromedriver), with the permission granted.
    pub async fn set_position(&self, lat: f64, lng: f64) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Browser.grantPermissions", "params": {"permissions": ["geolocation"]}}),
        )
        .await;
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setGeolocationOverride",
                   "params": {"latitude": lat, "longitude": lng, "accuracy": 10}}),
        )
        .await;
    }

    /// Run a script (`return ...`) with `args`; its result.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Wait until the script returns something truthy; that value.
    pub async fn wait_js(&self, script: &str, args: Value) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self.exec(script, args.clone()).await;
            let truthy = !matches!(&v, Value::Null | Value::Bool(false))
                && v != json!("")
                && v != json!(0)
                && v != json!([]);
            if truthy {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                let html = self
                    .exec(
                        "return location.href + '\\n' + document.body.innerText",
                        json!([]),
                    )
                    .await;
                panic!("timed out waiting for `{script}` {args}; page:\n{html}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait for an element matching `css`; its WebDriver reference.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .wait_js(
                "const e = document.querySelector(arguments[0]); \
                 return e && e.getClientRects().length ? e : null",
                json!([css]),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("not an element: {v}"))
            .to_string()
    }

    /// Wait until an element matching `css` contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str) {
        self.wait_js(
            "return [...document.querySelectorAll(arguments[0])].some(e => e.textContent.includes(arguments[1]))",
            json!([css, text]),
        )
        .await;
    }

    /// The text of the first element matching `css` (waits for it).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await;
        self.exec(
            "return document.querySelector(arguments[0]).textContent",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.exec(
            "arguments[0].scrollIntoView({block: 'center'}); return true",
            json!([{ELEMENT: el}]),
        )
        .await;
        self.cmd("POST", &format!("/element/{el}/click"), json!({}))
            .await;
    }

    /// Click the first element matching `css` whose text contains `text`.
    pub async fn click_text(&self, css: &str, text: &str) {
        let v = self
            .wait_js(
                "return [...document.querySelectorAll(arguments[0])].find(e => e.textContent.includes(arguments[1])) || null",
                json!([css, text]),
            )
            .await;
        let el = v[ELEMENT].as_str().expect("element").to_string();
        self.exec(
            "arguments[0].scrollIntoView({block: 'center'}); return true",
            json!([v]),
        )
        .await;
        self.cmd("POST", &format!("/element/{el}/click"), json!({}))
            .await;
    }

    /// Type into a field like a person (keyboard events through the
    /// browser), after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/clear"), json!({}))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Choose an option of a `<select>` by value.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await;
        self.exec(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); return true",
            json!([css, value]),
        )
        .await;
    }

    /// Give a file input a file from disk.
    pub async fn upload(&self, css: &str, path: &std::path::Path) {
        let v = self
            .wait_js("return document.querySelector(arguments[0])", json!([css]))
            .await;
        let el = v[ELEMENT].as_str().expect("element");
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            json!({"text": path.display().to_string()}),
        )
        .await;
    }

    /// The address the browser is at (also a page that failed to load).
    pub async fn current_url(&self) -> String {
        self.cmd("GET", "/url", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Accept the page's `confirm()` dialog (waits for it to open).
    pub async fn accept_dialog(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r: Value = self
                .client
                .post(format!("{}/alert/accept", self.session))
                .json(&json!({}))
                .send()
                .await
                .expect("alert")
                .json()
                .await
                .expect("alert json");
            if r["value"].is_null() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no dialog opened: {r}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Save a PNG of the viewport as `<dir>/<name>.png`, where `dir` is
    /// `JT_SCREENSHOT_DIR` (default `target/web-screenshots`).
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let dir = std::env::var("JT_SCREENSHOT_DIR").map_or_else(
            |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        // Let fonts and images settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // No screen may scroll sideways (360 px phones up to desktops).
        let fit = self
            .exec(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                json!([]),
            )
            .await;
        assert!(
            fit[0].as_u64() <= fit[1].as_u64(),
            "{name}: the page is wider than the window: {fit}"
        );
        let png = self.cmd("GET", "/screenshot", json!({})).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("png");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("write screenshot");
    }

    pub async fn quit(self) {
        let _ = self.client.delete(&self.session).send().await;
    }
}

/// A TCP proxy in front of a server: the browser talks to it, and the test
/// can cut it (every open connection dropped, new ones refused) and
/// restore it, like a phone losing its network.
pub struct Proxy {
    pub addr: String,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    upstream: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let proxy = Proxy::reserve().await;
        proxy.point_to(upstream);
        proxy
    }

    /// A proxy whose address is known before its server exists (for
    /// settings that must name the public URL, like an OAuth redirect);
    /// `point_to` it once the server runs.
    pub async fn reserve() -> Proxy {
        let upstream: Arc<Mutex<String>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let task = tokio::spawn({
            let (down, conns, upstream) = (down.clone(), conns.clone(), upstream.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.lock().expect("lock").clone();
                    let handle = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut conns = conns.lock().expect("lock");
                    conns.retain(|h| !h.is_finished());
                    conns.push(handle);
                }
            }
        });
        Proxy {
            addr,
            down,
            conns,
            upstream,
            task,
        }
    }

    /// Forward to this server (`http://127.0.0.1:PORT`) from now on.
    pub fn point_to(&self, upstream: &str) {
        *self.upstream.lock().expect("lock") = upstream.trim_start_matches("http://").to_string();
    }

    /// Drop every connection and refuse new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for h in self.conns.lock().expect("lock").drain(..) {
            h.abort();
        }
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for h in self.conns.lock().expect("lock").drain(..) {
            h.abort();
        }
    }
}
