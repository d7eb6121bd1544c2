//! The S/4HANA OData V2 test server of `tests/support/s4.rs`, standalone, for local end-to-end
//! runs (`scripts/e2e-local.sh`): `s4_test_server PORT USER PASSWORD`. It listens on 127.0.0.1
//! until it is stopped; `GET .../MaintenanceNotification?$format=json` lists what it holds.
//! `S4_CHAOS=FAIL_PER_MILLE,EXPIRE_EVERY` adds random 503s and CSRF token expiry (campaigns).
//! `S4_ATTACHMENTS_DIR=DIR` writes every original its attachment service takes into DIR (the
//! local end-to-end run checks the trend chart there).

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some(user), Some(password)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: s4_test_server PORT USER PASSWORD");
        std::process::exit(2);
    };
    let runtime = support::runtime(false);
    runtime.block_on(async {
        let server =
            support::s4::TestS4::start_at(&format!("127.0.0.1:{port}"), user, password).await;
        if let Some((fail, every)) = std::env::var("S4_CHAOS")
            .ok()
            .and_then(|c| {
                c.split_once(',')
                    .map(|(a, b)| (a.parse().ok(), b.parse().ok()))
            })
            .and_then(|(a, b)| Some((a?, b?)))
        {
            server.set_chaos(fail, every, 42);
        }
        println!("S/4 test server: {}", server.service_url());
        let Some(dir) = std::env::var_os("S4_ATTACHMENTS_DIR") else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        let mut written = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
            for original in server.originals().iter().skip(written) {
                let path =
                    std::path::Path::new(&dir).join(format!("{written:03}-{}", original.file_name));
                if let Err(e) = std::fs::write(&path, &original.bytes) {
                    eprintln!("{}: {e}", path.display());
                }
                written += 1;
            }
        }
    });
}
