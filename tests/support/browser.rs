//! Headless Chromium driven over the Chrome DevTools Protocol: open a page, run JavaScript in
//! it, resize its viewport, screenshot it, and collect what it logged as errors (uncaught
//! exceptions, `console.error`, and the browser's own errors such as CSP refusals).
//!
//! The browser is Debian's `chromium` (`PINCHER_TEST_CHROMIUM` names another), started by
//! the test with the flags of the brief; `scripts/test` installs it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A headless Chromium, closed when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    /// Errors logged, by CDP session id.
    errors: Arc<Mutex<HashMap<String, Vec<String>>>>,
    ids: AtomicU64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser binary.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PINCHER_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "the browser tests need Chromium at {} (Debian: apt-get install chromium; \
         scripts/test installs it, or set PINCHER_TEST_CHROMIUM)",
        path.display()
    );
    path
}

impl Browser {
    /// Starts Chromium and connects to it.
    pub async fn launch() -> Self {
        let profile = tempfile::tempdir().expect("browser profile folder");
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("chromium stderr");
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = found.send(url.trim().to_owned());
                }
            }
        });
        let url = address
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium prints its DevTools address");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to chromium's DevTools");
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = queue.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let errors: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let (waiting, logged) = (Arc::clone(&pending), Arc::clone(&errors));
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if let Some(id) = value["id"].as_u64() {
                    if let Some(reply) = waiting.lock().expect("pending").remove(&id) {
                        let _ = reply.send(value);
                    }
                } else if let Some(error) = logged_error(&value) {
                    let session = value["sessionId"].as_str().unwrap_or_default().to_owned();
                    logged
                        .lock()
                        .expect("errors")
                        .entry(session)
                        .or_default()
                        .push(error);
                }
            }
        });
        Self {
            child,
            _profile: profile,
            outgoing,
            pending,
            errors,
            ids: AtomicU64::new(1),
        }
    }

    /// Sends a command (to a page's session, if given) and returns its result.
    async fn send(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (reply, answer) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, reply);
        self.outgoing
            .send(message.to_string())
            .expect("the DevTools connection is open");
        let answer = tokio::time::timeout(Duration::from_secs(30), answer)
            .await
            .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
            .expect("an answer");
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {}",
            answer["error"]
        );
        answer["result"].clone()
    }

    /// A new tab, 1280 × 900.
    pub async fn page(&self) -> Page<'_> {
        let target = self
            .send(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .send(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.send(Some(&session), domain, json!({})).await;
        }
        let page = Page {
            browser: self,
            session,
        };
        page.viewport(1280, 900).await;
        page
    }
}

/// The text of an event that reports an error, if `event` is one.
fn logged_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught: {}",
            params["exceptionDetails"]["exception"]["description"]
                .as_str()
                .or(params["exceptionDetails"]["text"].as_str())
                .unwrap_or_default()
        )),
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            Some(format!("console.error: {}", params["args"]))
        }
        "Log.entryAdded" if params["entry"]["level"] == "error" => Some(format!(
            "{}: {} ({})",
            params["entry"]["source"].as_str().unwrap_or_default(),
            params["entry"]["text"].as_str().unwrap_or_default(),
            params["entry"]["url"].as_str().unwrap_or_default()
        )),
        _ => None,
    }
}

/// One tab.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Page<'_> {
    async fn send(&self, method: &str, params: Value) -> Value {
        self.browser.send(Some(&self.session), method, params).await
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.eval("window.__leaving = true").await;
        self.send("Page.navigate", json!({"url": url})).await;
        self.wait_until("!window.__leaving && document.readyState === 'complete'")
            .await;
    }

    /// Evaluates `expression` in the page and returns its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .send(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits (up to 15 s) until `condition` is true in the page.
    pub async fn wait_until(&self, condition: &str) {
        let check = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        for _ in 0..300 {
            if self.eval(&check).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let at = self.eval("location.href").await;
        panic!("still not true after 15 s at {at}: {condition}");
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.eval("location.pathname")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets the viewport to `width` × `height` CSS pixels (a phone's below 600).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.send(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
    }

    /// Emulates the `prefers-color-scheme` of the system: `light` or `dark`.
    pub async fn color_scheme(&self, scheme: &str) {
        self.send(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Emulates a media type: `print`, or `` for the screen again.
    pub async fn media(&self, media: &str) {
        self.send("Emulation.setEmulatedMedia", json!({"media": media}))
            .await;
    }

    /// Writes a PNG of the whole page to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self
            .send(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// What the page logged as errors so far.
    pub fn errors(&self) -> Vec<String> {
        self.browser
            .errors
            .lock()
            .expect("errors")
            .get(&self.session)
            .cloned()
            .unwrap_or_default()
    }
}

/// Where screenshots go: `screenshots` in the build folder's temporary folder.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}
