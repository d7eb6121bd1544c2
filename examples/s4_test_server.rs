//! The S/4HANA OData V2 test server of `tests/support/s4.rs`, standalone, for local end-to-end
//! runs (`scripts/e2e-local.sh`): `s4_test_server PORT USER PASSWORD`. It listens on 127.0.0.1
//! until it is stopped; `GET .../MaintenanceNotification?$format=json` lists what it holds.
//! `S4_CHAOS=FAIL_PER_MILLE,EXPIRE_EVERY` adds random 503s and CSRF token expiry (campaigns).

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
        let _ = tokio::signal::ctrl_c().await;
    });
}
