//! A WebSocket-to-TCP bridge in front of PostgreSQL, for `examples/websocket.rs`.
//!
//! ```text
//! cargo run --example ws_bridge -- --listen 127.0.0.1:8080 --upstream localhost:5432
//! ```
//! Each WebSocket connection gets its own TCP connection to the upstream server; binary
//! messages carry the byte stream both ways and a close on either side closes the other.
//! The client runs TLS inside the WebSocket, so the bridge relays ciphertext only.

use pgtls_testkit::ws_bridge;

const USAGE: &str = "usage: ws_bridge --listen ADDR --upstream HOST:PORT";

fn main() {
    let mut listen = None;
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            "--upstream" => upstream = args.next(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => usage_error(&format!("unknown argument {other}")),
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        usage_error("--listen and --upstream are required")
    };
    match ws_bridge::Bridge::start(&listen, &upstream, false) {
        Ok(bridge) => {
            eprintln!("ws_bridge: {} -> {upstream}", bridge.url());
            bridge.run_forever()
        }
        Err(err) => {
            eprintln!("ws_bridge: cannot listen on {listen} for {upstream}: {err}");
            std::process::exit(1);
        }
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("ws_bridge: {message}\n\n{USAGE}");
    std::process::exit(2);
}
