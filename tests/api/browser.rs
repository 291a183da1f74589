//! One real browser for the tests: headless Chromium driven over WebDriver (chromedriver),
//! with reqwest. Each test starts its own driver (and profile); `session_with` opens a
//! session with extra Chromium arguments and preferences (JavaScript off, say).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const SPACE: &str = " ";

/// Whether browser tests can run here; when they cannot, outside CI the test is skipped
/// (with a line saying so), and in CI it fails.
pub fn available_or_skip() -> bool {
    if available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have /usr/bin/chromium and /usr/bin/chromedriver"
    );
    eprintln!(
        "skipped: /usr/bin/chromium and /usr/bin/chromedriver are needed (scripts/test installs them)"
    );
    false
}

pub struct Driver {
    http: reqwest::Client,
    base: String,
    _process: tokio::process::Child,
    _profile: TempDir,
}

pub struct Session<'a> {
    driver: &'a Driver,
    url: String,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn available() -> bool {
    Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists()
}

impl Driver {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = tokio::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let profile =
            TempDir(std::env::temp_dir().join(format!("chipin-chromium-{}", uuid::Uuid::new_v4())));
        let driver = Self {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            _process: process,
            _profile: profile,
        };
        for _ in 0..100 {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && r.status().is_success()
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    pub async fn session(&self) -> Session<'_> {
        self.session_with(&[], json!({})).await
    }

    /// A session with extra Chromium arguments and profile preferences.
    pub async fn session_with(&self, extra_args: &[&str], prefs: Value) -> Session<'_> {
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", self._profile.0.display()));
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": prefs,
            }
        }}});
        let v = self.call("POST", "/session", Some(caps)).await;
        let id = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        Session {
            driver: self,
            url: format!("/session/{id}"),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let res = req
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("webdriver answers");
        let status = res.status();
        let v: Value = res.json().await.expect("webdriver JSON");
        assert!(status.is_success(), "{method} {path}: {v}");
        v["value"].clone()
    }
}

impl Session<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("{}{path}", self.url), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sizes the viewport (not the window, which includes the browser's frame).
    pub async fn size(&self, width: i64, height: i64) {
        let rect = |w: i64, h: i64| Some(json!({"width": w, "height": h}));
        self.call("POST", "/window/rect", rect(width, height)).await;
        let inner = self
            .call(
                "POST",
                "/execute/sync",
                Some(json!({"script": "return [window.innerWidth, window.innerHeight];", "args": []})),
            )
            .await;
        let (iw, ih) = (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap());
        if (iw, ih) != (width, height) {
            self.call(
                "POST",
                "/window/rect",
                rect(2 * width - iw, 2 * height - ih),
            )
            .await;
        }
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().expect("element found").to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Polls until the element's text contains `part`.
    pub async fn wait_for_text(&self, css: &str, part: &str) -> String {
        for _ in 0..100 {
            let text = self.text(css).await;
            if text.contains(part) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {part:?}");
    }

    /// The element's rendered text, read in one script call: a page that re-renders between
    /// a find and a read would otherwise hand back a stale element.
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..100 {
            let text = self
                .call(
                    "POST",
                    "/execute/sync",
                    Some(json!({
                        "script": "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;",
                        "args": [css]
                    })),
                )
                .await;
            if let Some(t) = text.as_str() {
                return t.to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} never appeared");
    }

    pub async fn selected(&self, css: &str) -> bool {
        let id = self.find(css).await;
        self.call("GET", &format!("/element/{id}/selected"), None)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    pub async fn wait_for_url(&self, part: &str) -> String {
        for _ in 0..150 {
            let url = self.url().await;
            if url.contains(part) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser never reached {part}; at {}", self.url().await);
    }

    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", None).await;
        let png = decode_base64(b64.as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Presses keys through WebDriver actions, one key down and up each (`\u{E004}` is Tab,
    /// `\u{E007}` Enter, `" "` Space), into whatever element has the focus.
    pub async fn press(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
        self.call("DELETE", "/actions", None).await;
    }

    /// Types text into the focused element, key by key.
    pub async fn type_keys(&self, text: &str) {
        let keys: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.press(&refs).await;
    }

    /// The id of the focused element (empty when it has none).
    pub async fn focused_id(&self) -> String {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": "return document.activeElement ? document.activeElement.id : '';", "args": []})),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Presses Tab until the element with this id has the focus (bounded).
    pub async fn tab_to(&self, id: &str) {
        for _ in 0..40 {
            if self.focused_id().await == id {
                return;
            }
            self.press(&[TAB]).await;
        }
        panic!("Tab never reached #{id}");
    }

    /// Whether an element matches `css` now.
    pub async fn exists(&self, css: &str) -> bool {
        let v = self
            .call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array().is_some_and(|a| !a.is_empty())
    }

    /// Polls until an element matches `css`.
    pub async fn wait_for(&self, css: &str) {
        for _ in 0..100 {
            if self.exists(css).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never appeared");
    }

    /// Switches into the iframe matching `css`.
    pub async fn enter_frame(&self, css: &str) {
        let id = self.find(css).await;
        self.call("POST", "/frame", Some(json!({"id": {ELEMENT: id}})))
            .await;
    }

    /// Back to the top-level page.
    pub async fn enter_top(&self) {
        self.call("POST", "/frame", Some(json!({"id": null}))).await;
    }

    /// An attribute (or property) of the element matching `css`.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let id = self.find(css).await;
        self.call("GET", &format!("/element/{id}/attribute/{name}"), None)
            .await
            .as_str()
            .map(str::to_string)
    }

    pub async fn quit(self) {
        self.call("DELETE", "", None).await;
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(value(*c)) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..=take]);
    }
    out
}
