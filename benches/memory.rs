//! Memory: heap held per established idle session and allocations per handshake, counted by a
//! counting global allocator.
//!
//! - `cargo bench --bench memory` — in memory, client side only (the in-memory rustls server
//!   runs on the same thread with counting off): pgtls's core `Session` versus a bare rustls
//!   `ClientConnection`, without roots and with verify-full / WebPKI.
//! - `cargo bench --bench memory -- server HOST PORT CA_FILE` — against a real PostgreSQL
//!   (the `connections` bench starts one and runs this): whole-process heap per idle
//!   connection for tokio-postgres with tokio-postgres-rustls, with pgtls's connector, and
//!   with no TLS; then the scale test: 1, 10, 100 and 1000 sessions held open at once on
//!   pgtls's tokio adapter (and on the core `Session` in memory), heap per session.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/mod.rs"]
mod common;
#[path = "common/pgwire.rs"]
mod pgwire;
#[path = "common/realserver.rs"]
mod realserver;

use std::sync::Arc;

use common::{Buffers, Material, PgtlsClient, RustlsClient};
use pgtls::rustls::{ClientConnection, ServerConfig};
use pgtls::Session;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Sessions held at once for the per-session figures.
const HELD: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let host = args.get(1).expect("HOST").clone();
            let port: u16 = args.get(2).and_then(|p| p.parse().ok()).expect("PORT");
            let ca = args.get(3).expect("CA_FILE").clone();
            realserver::run(&host, port, &ca);
        }
        _ => in_memory(),
    }
}

/// One measured variant's figures.
struct Figures {
    allocs_per_handshake: f64,
    bytes_allocated_per_handshake: f64,
    heap_per_session: f64,
    inline_size: usize,
}

impl Figures {
    fn held(&self) -> f64 {
        self.heap_per_session + self.inline_size as f64
    }
}

fn measure_pgtls(config: &pgtls::Config, server: &Arc<ServerConfig>) -> Figures {
    let mut bufs = Buffers::default();
    let mut held: Vec<Session> = Vec::with_capacity(HELD);
    let mut servers = Vec::with_capacity(HELD);
    let before = alloc::gated_counters();
    for _ in 0..HELD {
        let mut client = None;
        alloc::gated(&mut || client = Some(PgtlsClient::new(config)));
        let mut client = client.expect("client");
        servers.push(common::handshake(
            &mut client,
            server,
            &mut bufs,
            true,
            &mut alloc::gated,
        ));
        let mut client = Some(client);
        alloc::gated(&mut || held.push(client.take().expect("client").into_session()));
    }
    let diff = alloc::gated_counters().since(&before);
    drop(servers);
    let figures = figures(diff, std::mem::size_of::<Session>());
    alloc::gated(&mut || held.clear());
    figures
}

fn measure_rustls(
    config: &Arc<pgtls::rustls::ClientConfig>,
    server: &Arc<ServerConfig>,
) -> Figures {
    let mut bufs = Buffers::default();
    let mut held: Vec<ClientConnection> = Vec::with_capacity(HELD);
    let mut servers = Vec::with_capacity(HELD);
    let before = alloc::gated_counters();
    for _ in 0..HELD {
        let mut client = None;
        alloc::gated(&mut || client = Some(RustlsClient::new(config)));
        let mut client = client.expect("client");
        servers.push(common::handshake(
            &mut client,
            server,
            &mut bufs,
            false,
            &mut alloc::gated,
        ));
        let mut client = Some(client);
        alloc::gated(&mut || held.push(client.take().expect("client").conn));
    }
    let diff = alloc::gated_counters().since(&before);
    drop(servers);
    let figures = figures(diff, std::mem::size_of::<ClientConnection>());
    alloc::gated(&mut || held.clear());
    figures
}

fn figures(diff: alloc::Snapshot, inline_size: usize) -> Figures {
    let n = HELD as f64;
    Figures {
        allocs_per_handshake: diff.allocs as f64 / n,
        bytes_allocated_per_handshake: diff.allocated as f64 / n,
        heap_per_session: diff.live() as f64 / n,
        inline_size,
    }
}

fn in_memory() {
    let material = Material::load_or_generate(&Material::default_dir());
    let server = material.server_config();
    // Warm up lazily initialised statics (provider CPU detection, ...) outside the counts.
    let _ = measure_pgtls(&material.pgtls_no_roots(), &server);
    let _ = measure_rustls(&material.rustls_no_roots(), &server);

    let rows = [
        (
            "pgtls `Session`, no roots",
            measure_pgtls(&material.pgtls_no_roots(), &server),
        ),
        (
            "bare rustls, any-cert verifier",
            measure_rustls(&material.rustls_no_roots(), &server),
        ),
        (
            "pgtls `Session`, verify-full",
            measure_pgtls(&material.pgtls_verify_full(), &server),
        ),
        (
            "bare rustls, WebPKI verifier",
            measure_rustls(&material.rustls_webpki(), &server),
        ),
    ];
    println!("### Memory per session, in memory (client side only, mean over {HELD} sessions held at once)\n");
    println!("| client | allocations per handshake | bytes allocated per handshake | heap held per idle session | + struct | held total | vs bare rustls |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (i, (name, f)) in rows.iter().enumerate() {
        let baseline = &rows[i - i % 2 + 1].1;
        let vs = if i % 2 == 0 {
            format!(
                "{:+.0} B held (target ≤ +2048), {:+.0} allocations",
                f.held() - baseline.held(),
                f.allocs_per_handshake - baseline.allocs_per_handshake
            )
        } else {
            "baseline".into()
        };
        println!(
            "| {name} | {:.1} | {:.0} | {:.0} B | {} B | {:.0} B | {vs} |",
            f.allocs_per_handshake,
            f.bytes_allocated_per_handshake,
            f.heap_per_session,
            f.inline_size,
            f.held()
        );
    }
    println!();
    scale_in_memory(&material, &server);
}

/// The core `Session` held 1 … 10 000 at once: heap per session must stay flat.
fn scale_in_memory(material: &Material, server: &Arc<ServerConfig>) {
    let config = material.pgtls_verify_full();
    let mut bufs = Buffers::default();
    println!(
        "### Scale, in memory: pgtls core `Session`s held at once (client heap per session)\n"
    );
    println!("| sessions | heap per session |");
    println!("|---:|---:|");
    for n in [1usize, 10, 100, 1000, 10_000] {
        let mut held: Vec<Session> = Vec::with_capacity(n);
        let before = alloc::gated_counters();
        for _ in 0..n {
            let mut client = None;
            alloc::gated(&mut || client = Some(PgtlsClient::new(&config)));
            let mut client = client.expect("client");
            drop(common::handshake(
                &mut client,
                server,
                &mut bufs,
                true,
                &mut alloc::gated,
            ));
            let mut client = Some(client);
            alloc::gated(&mut || held.push(client.take().expect("client").into_session()));
        }
        let diff = alloc::gated_counters().since(&before);
        println!("| {n} | {:.0} B |", diff.live() as f64 / n as f64);
        alloc::gated(&mut || held.clear());
    }
    println!();
}
