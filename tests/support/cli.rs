//! Running the `e2b` binary against moto.

use std::process::{Command, Output};

use super::moto;

/// Runs `e2b` with AWS pointed at moto, plus `env`.
pub async fn e2b(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        // Set for integration tests; the examples that share this module never run it.
        let mut command = Command::new(option_env!("CARGO_BIN_EXE_e2b").unwrap_or("e2b"));
        command
            .args(&args)
            .env("AWS_ENDPOINT_URL", moto::endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("S3_FORCE_PATH_STYLE", "true")
            .env_remove("AWS_PROFILE");
        for (k, v) in env {
            command.env(k, v);
        }
        let output = command.output().expect("output (output)");
        super::show_log(&String::from_utf8_lossy(&output.stderr));
        output
    })
    .await
    .expect("String::from_utf8_lossy in the test set-up")
}
