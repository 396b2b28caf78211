//! `Browser`: Debian's headless Chromium driven over WebDriver (the `fantoccini` crate)
//! through a `chromedriver` this test starts on a free loopback port, with the waits,
//! clicks and screenshots the admin page's tests need.
//!
//! Chromium runs with the flags that work on a machine with no network beyond loopback
//! (no background networking, component updates, sync or first-run work) and a fresh
//! profile in a temp dir. The driver and the browser it starts share a process group,
//! killed whole when the `Browser` is dropped, so a failed test leaves no browser behind.
//! A machine without the browser or the driver follows the one rule for missing services
//! ([`skip_or_fail_without`]): a failure under `CI=true`, a loud skip elsewhere.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::skip_or_fail_without;

/// How long a wait for the page lasts before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(30);

/// The browser window's width and height.
const WINDOW: (u32, u32) = (1280, 800);

/// Where a test's screenshots are copied besides its temp dir (to refresh docs/admin/).
const SCREENSHOTS_ENV: &str = "PISTON_ADMIN_SCREENSHOTS";

/// A headless Chromium under a chromedriver of this test's own.
pub struct Browser {
    pub client: Client,
    _driver: DriverProcess,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

/// An executable: the path in `env` if set, else the first of `names` on `PATH`.
fn locate(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a browser session, with screenshots going to `shots`.
    /// `None` (after a loud SKIPPED line) when the browser or the driver is missing
    /// outside CI; under `CI=true` that is a failure.
    pub async fn start(shots: &Path) -> Option<Browser> {
        let chromium = locate("PISTON_CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = locate("PISTON_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            skip_or_fail_without(
                "Chromium and ChromeDriver",
                "no `chromium` or `chromedriver` on PATH (install Debian's chromium and \
                 chromium-driver, as .ci/run does, or set PISTON_CHROMIUM and \
                 PISTON_CHROMEDRIVER)",
            );
            return None;
        };
        let port = free_loopback_port();
        // Guarded before connecting, so a failed connection still ends the driver.
        let driver = DriverProcess(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group: the browser it starts joins it, and both are
                // killed together on drop.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display())),
        );
        let profile = tempfile::tempdir().expect("profile dir");
        Some(Browser {
            client: connect_when_ready(port, &chromium, profile.path()).await,
            _driver: driver,
            shots: shots.to_path_buf(),
            _profile: profile,
        })
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` in the page (`arguments[i]` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of the first element `css` selects, or `None` if there is none.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        let found = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )
            .await;
        found.as_str().map(str::to_owned)
    }

    /// Waits until an element `css` selects exists and its text passes `check`;
    /// returns that text. Fails the test (naming `what`) after [`PAGE_WAIT`].
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let text = self.text_of(css).await;
            if let Some(text) = text.as_deref().filter(|t| check(t)) {
                return text.to_owned();
            }
            if Instant::now() >= deadline {
                let notices = self.text_of("#notices").await.unwrap_or_default();
                let errors = self.text_of(".form-error:not(:empty)").await;
                panic!(
                    "waited {PAGE_WAIT:?} for {what} (`{css}`): its text is {text:?}; \
                     notices on the page: {notices:?}; form error: {errors:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` selects something; returns its text.
    pub async fn wait_for(&self, css: &str, what: &str) -> String {
        self.wait_text(css, what, |_| true).await
    }

    /// Clicks the element `css` selects, as a user does (it must be visible and
    /// enabled); an element the page re-rendered meanwhile is looked up again.
    pub async fn click(&self, css: &str, what: &str) {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let outcome = match self.client.find(Locator::Css(css)).await {
                Ok(element) => clickable(&element).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(true) => return,
                Ok(false) | Err(CmdError::Standard(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(false) => panic!("{what} (`{css}`) stayed disabled for {PAGE_WAIT:?}"),
                Err(e) => panic!("click {what} (`{css}`): {e}"),
            }
        }
    }

    /// Types `text` into the field `css` selects, replacing what it held.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("field `{css}`: {e}"));
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type into field");
    }

    /// Saves a PNG of the window as `NAME.png` in the test's screenshot dir (and in
    /// `$PISTON_ADMIN_SCREENSHOTS` when set); returns its path.
    /// The window grows to the page's height for the picture, then returns to its size.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // The page's height plus what the window takes beyond its viewport.
        let height = self
            .js(
                "return Math.ceil(document.documentElement.scrollHeight \
                 + window.outerHeight - window.innerHeight);",
                vec![],
            )
            .await
            .as_u64()
            .map_or(WINDOW.1, |h| u32::try_from(h).unwrap_or(u32::MAX))
            .clamp(WINDOW.1, 3000);
        self.client
            .set_window_size(WINDOW.0, height)
            .await
            .expect("size the window to the page");
        let png = self.client.screenshot().await.expect("screenshot");
        self.client
            .set_window_size(WINDOW.0, WINDOW.1)
            .await
            .expect("size the window back");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("write screenshot");
        if let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) {
            let copy = Path::new(&dir).join(format!("{name}.png"));
            std::fs::write(&copy, &png).expect("copy screenshot");
        }
        path
    }

    /// Ends the session (the browser exits); the driver goes on drop.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Clicks `element` if it is enabled; `Ok(false)` if it is disabled.
async fn clickable(element: &Element) -> Result<bool, CmdError> {
    if !element.is_enabled().await? {
        return Ok(false);
    }
    element.click().await?;
    Ok(true)
}

/// Waits for chromedriver to answer on `port`, then opens a session on `chromium`.
async fn connect_when_ready(port: u16, chromium: &Path, profile: &Path) -> Client {
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = match http.get(format!("{url}/status")).send().await {
            Ok(r) => r
                .text()
                .await
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on {url} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let options = json!({
        "binary": chromium,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"))
}

/// The chromedriver process, in a process group of its own that the browser it starts
/// joins; dropping it kills the whole group.
struct DriverProcess(Child);

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}
