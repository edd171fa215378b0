//! Headless Chromium for the web console's end-to-end tests, driven over WebDriver
//! (fantoccini) through a chromedriver this harness starts for each test on an ephemeral
//! loopback port, with a fresh profile directory. Every wait is bounded by
//! [`BROWSER_WAIT`] and fails the test naming what it waited for and what the page showed.
//!
//! The browser runs in the time zone [`TIME_ZONE`] (Central European: `+01:00` in winter)
//! so that tests can check that times are shown with the browser's offset. With
//! `FLEETGATE_SCREENSHOTS=<dir>` set, [`Browser::shot`] writes PNGs there (the screenshot
//! script, `scripts/console-screenshots.sh`); otherwise it does nothing.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// How long any single wait of a console test lasts before it fails.
pub const BROWSER_WAIT: Duration = Duration::from_secs(15);

/// The browser's time zone in every console test.
pub const TIME_ZONE: &str = "Europe/Berlin";

/// The environment variable naming the directory screenshots are written to.
pub const SCREENSHOTS_ENV: &str = "FLEETGATE_SCREENSHOTS";

/// A headless Chromium session on its own chromedriver.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    base: String,
    shots: Option<PathBuf>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("base", &self.base).finish()
    }
}

fn program(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral loopback port")
        .port()
}

/// Starts chromedriver on a free port, in a process group of its own (so that the
/// browsers it starts end with it), and waits until it accepts connections. A port taken
/// in between by someone else makes chromedriver exit: then another port is tried.
fn start_driver() -> (Child, u16) {
    use std::os::unix::process::CommandExt as _;
    let chromedriver = program("CHROMEDRIVER", "chromedriver");
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = match Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .env("TZ", TIME_ZONE)
            .env("LANG", "en_US.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
        {
            Ok(child) => child,
            Err(err) => panic!(
                "could not start {chromedriver} ({err}); install chromium-driver \
                 (scripts/setup.sh does)"
            ),
        };
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return (child, port);
            }
            if let Ok(Some(status)) = child.try_wait() {
                last = format!("chromedriver on port {port} exited: {status}");
                break;
            }
            if Instant::now() > deadline {
                end_group(&mut child);
                last =
                    format!("chromedriver did not listen on port {port} within {BROWSER_WAIT:?}");
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    panic!("{last}");
}

/// Ends the process group this harness started for chromedriver, then reaps chromedriver.
fn end_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Browser {
    /// A new headless Chromium whose pages are under `base` (`http://127.0.0.1:port`).
    pub async fn start(base: &str) -> Browser {
        let (mut driver, port) = start_driver();
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1360,860",
            "--lang=en-US",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": program("CHROMIUM", "/usr/bin/chromium"),
                "args": args,
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match tokio::time::timeout(
            BROWSER_WAIT * 2,
            ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                end_group(&mut driver);
                panic!("chromedriver could not start Chromium: {err}")
            }
            Err(_) => {
                end_group(&mut driver);
                panic!("Chromium did not start within {:?}", BROWSER_WAIT * 2)
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
            base: base.trim_end_matches('/').to_owned(),
            shots: std::env::var_os(SCREENSHOTS_ENV).map(PathBuf::from),
        }
    }

    /// Opens the console at `hash` (`#/assets`; empty for the page itself).
    pub async fn open(&self, hash: &str) {
        let url = format!("{}/{hash}", self.base);
        self.client.goto(&url).await.expect("navigate");
    }

    /// The page's visible text, for failure messages.
    pub async fn page_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(err) => format!("(no body: {err})"),
        }
    }

    async fn fail(&self, what: &str) -> ! {
        let text = self.page_text().await;
        panic!("waited {BROWSER_WAIT:?} for {what}; the page showed:\n{text}")
    }

    /// The value of the one-time secret (a token) the console shows in its dialog, then the
    /// dialog closed.
    pub async fn take_secret(&self) -> String {
        let value = self
            .find("dialog #secret")
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default();
        self.click("#secret-done").await;
        self.gone("dialog").await;
        value
    }

    /// The first element matching `css`, once there is one and it is displayed.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                if found.is_displayed().await.unwrap_or(false) {
                    return found;
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("`{css}` to be shown")).await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Waits until the element `css` is shown and its text contains `needle`; its text.
    pub async fn text_of(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = found.text().await {
                    if text.contains(needle) {
                        return text;
                    }
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("`{css}` to say {needle:?}")).await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn gone(&self, css: &str) {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            match self.client.find_all(Locator::Css(css)).await {
                Ok(found) if found.is_empty() => return,
                _ => {}
            }
            if Instant::now() > deadline {
                self.fail(&format!("`{css}` to go away")).await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// How many elements match `css` now (no waiting).
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| found.len())
            .unwrap_or(0)
    }

    /// Clicks `css` once it is shown and enabled.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            let element = self.find(css).await;
            if element.is_enabled().await.unwrap_or(false) && element.click().await.is_ok() {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("`{css}` to be enabled and clickable"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Types `text` into the field `css` (emptied first).
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear the field");
        field.send_keys(text).await.expect("type");
    }

    /// Picks the option whose visible text is `label` in the `<select>` `css`, once it has
    /// one.
    pub async fn select(&self, css: &str, label: &str) {
        let option = format!("{css} option");
        self.text_of(css, label).await;
        let select = self.find(css).await;
        if select.select_by_label(label).await.is_err() {
            self.fail(&format!("`{option}` labelled {label:?}")).await;
        }
    }

    /// The browser's cookies for the console's origin, by name.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|cookie| cookie.value().to_owned())
    }

    /// With `FLEETGATE_SCREENSHOTS` set: writes the page as `{dir}/{name}.png`.
    pub async fn shot(&self, name: &str) {
        let Some(dir) = &self.shots else { return };
        // Let transitions and fonts settle so the picture shows what a person sees.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Signs in on the sign-in page with an API token, as the platform admin's first
    /// sign-in does; the console then asks for a password ("Not now" when `skip_password`).
    pub async fn sign_in_with_token(&self, token: &str, skip_password: bool) {
        self.find("#sign-in-form").await;
        self.click("#use-token").await;
        self.type_into("#token", token).await;
        self.click("#sign-in").await;
        if skip_password {
            self.click("#later").await;
            self.find("#sign-out").await;
        }
    }

    /// Signs in on the sign-in page with a user id and password.
    pub async fn sign_in(&self, user_id: &str, password: &str) {
        self.find("#sign-in-form").await;
        self.type_into("#user-id", user_id).await;
        self.type_into("#password", password).await;
        self.click("#sign-in").await;
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(BROWSER_WAIT, self.client.clone().close()).await;
        end_group(&mut self.driver);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reached quit(): end what this harness started.
        if let Ok(None) = self.driver.try_wait() {
            end_group(&mut self.driver);
        }
    }
}
