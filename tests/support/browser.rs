//! A real browser for the console's tests: Debian's headless Chromium driven through its
//! ChromeDriver (WebDriver) with fantoccini, and `e2b console` run as the operator runs it.
//!
//! ChromeDriver is found at `E2B_CHROMEDRIVER`, else `/usr/bin/chromedriver`; Chromium at
//! `E2B_CHROMIUM`, else `/usr/bin/chromium` (`.ci/run` installs both: `apt-get install chromium
//! chromium-driver`). Screenshots go to `target/console-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::moto;

/// ChromeDriver and a browser session; dropped, both end.
pub struct Browser {
    pub client: fantoccini::Client,
    _driver: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_path = std::env::var("E2B_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_string());
        let chromium =
            std::env::var("E2B_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{driver_path}: {e} (apt-get install chromium chromium-driver, or set E2B_CHROMEDRIVER)")
            });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=en"]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = String::new();
        for _ in 0..100 {
            let builder = fantoccini::ClientBuilder::rustls();
            let connected = match builder {
                Ok(mut b) => b.capabilities(capabilities.clone()).connect(&url).await,
                Err(e) => panic!("fantoccini: {e}"),
            };
            match connected {
                Ok(client) => {
                    return Browser {
                        client,
                        _driver: driver,
                    };
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no browser session from {driver_path} with {chromium}: {last}")
    }

    /// Ends the WebDriver session, so that ChromeDriver stops its Chromium (killing the driver
    /// alone leaves Chromium running).
    pub async fn close(self) {
        if let Err(e) = self.client.close().await {
            eprintln!("closing the browser session: {e}");
        }
    }

    /// The page's text as shown (script-free pages: the body's text).
    pub async fn text(&self) -> String {
        match self.client.find(fantoccini::Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => panic!("no body: {e}"),
        }
    }

    /// The page's text once it holds `needle` (a navigation may still be under way after a
    /// click); after 10 s, whatever it holds.
    pub async fn text_with(&self, needle: &str) -> String {
        let mut text = String::new();
        for _ in 0..100 {
            text = match self.client.find(fantoccini::Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        text
    }

    /// Saves a screenshot of the page as `target/console-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("screenshot {name}: {e}"),
        };
        if let Err(e) = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(format!("{name}.png")), png))
        {
            panic!("saving screenshot {name}: {e}");
        }
    }

    pub async fn click(&self, locator: fantoccini::Locator<'_>) {
        match self.client.find(locator).await {
            Ok(element) => {
                if let Err(e) = element.click().await {
                    panic!("click {locator:?}: {e}")
                }
            }
            Err(e) => panic!("not found {locator:?}: {e}"),
        }
    }
}

/// `e2b console` running with `env` (AWS pointed at moto); dropped, it ends.
pub struct ConsoleProcess {
    /// The URL it printed, with its token.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    _child: Child,
}

impl ConsoleProcess {
    pub async fn start(env: Vec<(&'static str, String)>) -> ConsoleProcess {
        let binary = option_env!("CARGO_BIN_EXE_e2b").unwrap_or("e2b");
        let mut command = Command::new(binary);
        command
            .args(["console", "--port", "0"])
            .env("AWS_ENDPOINT_URL", moto::endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("S3_FORCE_PATH_STYLE", "true")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} console: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("no stdout")
        };
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("e2b console: open ") {
                    return url.to_string();
                }
            }
            String::new()
        })
        .await
        .unwrap_or_default();
        assert!(url.starts_with("http://127.0.0.1:"), "no URL printed");
        let origin = url.split("/?").next().unwrap_or_default().to_string();
        ConsoleProcess {
            url,
            origin,
            _child: child,
        }
    }
}
