//! `cargo lambda watch` (the Lambda runtime API emulator, and Function URL emulation) for the
//! integration tests; stopped, with the function it started, when dropped.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn cargo_lambda() -> String {
    if let Ok(path) = std::env::var("E2B_CARGO_LAMBDA") {
        return path;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/cargo-lambda");
    if std::path::Path::new(venv).exists() {
        return venv.to_string();
    }
    "cargo-lambda".to_string()
}

/// `cargo lambda watch`, stopped (with the function it started) when dropped.
pub struct Watch {
    child: Child,
    pub port: u16,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The watcher runs the function as a child: stop the whole process group.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port in the test set-up")
}

pub fn watch(bin: &str, env: &[(&str, String)], log_path: &std::path::Path) -> Watch {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let log = std::fs::File::create(log_path).expect("log (std::fs::File::create)");
    let mut command = Command::new(cargo_lambda());
    command
        .args([
            "lambda",
            "watch",
            "--bin",
            bin,
            "--invoke-address",
            "127.0.0.1",
        ])
        .args([
            "--invoke-port",
            &port.to_string(),
            "--quiet",
            "--ignore-changes",
            // As the template's Function URL (no CORS configuration): every request, OPTIONS
            // included, reaches the function; the emulator's default CORS layer would answer
            // preflight requests itself.
            "--disable-cors",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::from(
            log.try_clone().expect("try_clone in the test set-up"),
        ))
        .stderr(Stdio::from(log))
        .process_group(0);
    for (key, value) in env {
        command.arg("--env-var").arg(format!("{key}={value}"));
    }
    let child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot run cargo-lambda ({e}): run the tests with `bash scripts/test.sh`, which installs it")
    });
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "cargo lambda watch did not listen within 300 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Watch { child, port }
}

/// Invokes `function` under `watch` with `event` (`cargo lambda invoke --data-file`): whether it
/// succeeded, and what cargo lambda printed (the function's answer, or its error).
pub fn invoke(watch: &Watch, function: &str, event: &serde_json::Value) -> (bool, String) {
    let file = std::env::temp_dir().join(format!(
        "e2b-invoke-{}-{}.json",
        std::process::id(),
        watch.port
    ));
    std::fs::write(&file, event.to_string()).expect("to_string in the test set-up");
    let output = Command::new(cargo_lambda())
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &watch.port.to_string()])
        .arg("--data-file")
        .arg(&file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("output in the test set-up");
    let _ = std::fs::remove_file(&file);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
