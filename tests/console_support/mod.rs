//! Headless Chromium through chromedriver, for the console and docs browser tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Upper bound of every wait on the page.
pub const WAIT: Duration = Duration::from_secs(60);

/// Why a browser test cannot run here.
pub struct Skip(pub String);

/// Reports a test that could not run: loudly, and as a failure where `CI` is set.
pub fn skipped(why: &str) {
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: browser test: {why} ***\n"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "browser test cannot run in CI: {why}"
    );
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Where screenshots go.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("console-screenshots")
}

/// A chromedriver process and a browser session through it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a fresh headless Chromium.
    pub async fn launch() -> Result<Self, Skip> {
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or_else(|| Skip("chromium is not installed (apt-get install chromium)".into()))?;
        let chromedriver = find_program(&["chromedriver"]).ok_or_else(|| {
            Skip("chromedriver is not installed (apt-get install chromium-driver)".into())
        })?;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Skip(format!("chromedriver does not start: {e}")))?;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen; try until it answers.
        let mut last = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Browser {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("chromedriver did not answer: {last}");
    }

    /// Waits until an element matching `css` is displayed.
    pub async fn visible(&self, css: &str) {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
        for _ in 0..600 {
            if found.is_displayed().await.unwrap_or(false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never became visible");
    }

    /// Waits until `script` returns true.
    pub async fn until(&self, script: &str) {
        for _ in 0..600 {
            if self.client.execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never true: {script}");
    }

    /// Waits until the text of `css` contains `text`.
    pub async fn text_contains(&self, css: &str, text: &str) {
        let mut seen = String::new();
        for _ in 0..600 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                seen = element.text().await.unwrap_or_default();
                if seen.contains(text) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never contained {text:?}; last text {seen:?}");
    }

    /// The text of the first element matching `css`, once it has some.
    pub async fn text_of(&self, css: &str) -> String {
        self.visible(css).await;
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.text().await.unwrap().trim().to_owned()
    }

    /// An attribute of the first element matching `css`.
    pub async fn attribute(&self, css: &str, name: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.attr(name).await.unwrap().unwrap_or_default()
    }

    /// Clears and types into an input.
    pub async fn fill(&self, css: &str, text: &str) {
        self.visible(css).await;
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.visible(css).await;
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }

    /// No alert is open and no markup from data became elements.
    pub async fn no_markup_ran(&self) {
        assert!(
            self.client.get_alert_text().await.is_err(),
            "an alert opened: markup in a name ran"
        );
        let injected: Value = self
            .client
            .execute(
                "return document.querySelectorAll('#view img:not(#qr-image), #view script, #view b').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, 0, "names became elements");
    }

    /// Saves a PNG of the page under `target/console-screenshots/`.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// A screenshot at a phone's width, then back to the desktop size.
    pub async fn at_phone_width(&self, name: &str) {
        self.client.set_window_size(390, 844).await.unwrap();
        let overflow: Value = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "the page scrolls sideways at phone width by {overflow}px"
        );
        self.shot(name).await;
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
