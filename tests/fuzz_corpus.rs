//! Replays the committed cargo-fuzz corpus (fuzz/corpus/<target>/*) through the fuzz
//! bodies on stable Rust, plus a few thousand pseudo-random inputs per target, so that
//! plain `cargo test` catches regressions the fuzzers once found.
//!
//! The `verifier` corpus is replayed through the same chain generator the fuzz target
//! uses (`fuzz/common/generated_chain.rs`, included here). The `verifier_openssl` corpus
//! is not replayed: that target compares with the system's OpenSSL, and the library has
//! no OpenSSL dependency; its pgtls half is the `verifier` body, so its seeds are
//! replayed through that body instead.
use std::fs;

#[path = "../fuzz/common/generated_chain.rs"]
mod generated_chain;
use std::path::Path;

type Body = fn(&[u8]);

const TARGETS: &[(&str, Body)] = &[
    ("response_byte", pgtls::fuzz::response_byte),
    ("client_machine", pgtls::fuzz::client_machine_target),
    ("call_sequence", pgtls::fuzz::call_sequence_target),
    ("host_name", pgtls::fuzz::host_name),
    ("channel_binding", pgtls::fuzz::channel_binding),
    ("credentials", pgtls::fuzz::credentials),
    ("conninfo", pgtls::fuzz::conninfo),
    ("acceptor", pgtls::fuzz::acceptor),
    ("verifier", generated_chain::verifier_body),
];

/// Corpora replayed through another target's body (see the module docs).
const REPLAYED_ELSEWHERE: &[(&str, Body)] = &[("verifier_openssl", generated_chain::verifier_body)];

#[test]
fn every_target_has_a_committed_corpus_and_replays_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, body) in TARGETS.iter().chain(REPLAYED_ELSEWHERE) {
        let dir = root.join(name);
        let entries: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus for {name} missing at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!entries.is_empty(), "empty corpus for {name}");
        for path in entries {
            let data = fs::read(&path).unwrap();
            body(&data);
        }
    }
}

/// A small deterministic generator (xorshift) so the run is reproducible.
fn pseudo_random_inputs(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut state = seed;
    (0..count).map(move |_| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let len = (next() % 600) as usize;
        (0..len).map(|_| next() as u8).collect()
    })
}

#[test]
fn pseudo_random_inputs_never_panic() {
    for (i, (_, body)) in TARGETS.iter().enumerate() {
        for data in pseudo_random_inputs(0x9e37_79b9_7f4a_7c15 ^ i as u64, 300) {
            body(&data);
        }
    }
}

/// The all-default chain is valid, and the generator's decisions reach the verifier:
/// a chain the verifier must reject (an expired leaf) is rejected with OpenSSL's words.
#[test]
fn generated_chains_reach_the_verifier() {
    let valid = generated_chain::generate(&[]).expect("the default chain");
    let verdicts = pgtls::fuzz::verify_chain(&valid.input()).expect("the root file loads");
    assert_eq!(verdicts.verify_ca, Ok(()), "{}", valid.description);
    assert_eq!(verdicts.verify_full, Ok(()), "{}", valid.description);

    // Header (7 bytes), then the root's choices (21 bytes), then the leaf's: validity 1.
    let mut expired_leaf = vec![0u8; 7 + 21];
    expired_leaf.extend([0; 17]);
    expired_leaf.push(1);
    let chain = generated_chain::generate(&expired_leaf).expect("a chain");
    let verdicts = pgtls::fuzz::verify_chain(&chain.input()).expect("the root file loads");
    assert_eq!(
        verdicts.verify_ca,
        Err("SSL error: certificate verify failed: certificate has expired".to_owned()),
        "{}",
        chain.description
    );
}

/// What verify-ca says about some of the committed `verifier` seeds (named after what
/// they change): `None` accepted, `Some(reason)` rejected with OpenSSL's reason. Each
/// of these verdicts was checked against OpenSSL by the `verifier_openssl` target.
const SEED_VERDICTS: &[(&str, Option<&str>)] = &[
    ("default", None),
    ("one_intermediate", None),
    ("two_intermediates", None),
    ("leaf_v1", None),
    ("root_v1", None),
    ("chain_rsa_ed25519_p384", None),
    ("leaf_expired", Some("certificate has expired")),
    ("intermediate_expired", Some("certificate has expired")),
    ("root_not_yet_valid", Some("certificate is not yet valid")),
    ("leaf_not_after_now", Some("certificate has expired")),
    ("leaf_not_before_now", None),
    ("leaf_wrong_signer", Some("certificate signature failure")),
    (
        "leaf_akid_wrong",
        Some("unable to get local issuer certificate"),
    ),
    ("intermediate_not_ca", Some("invalid CA certificate")),
    ("intermediate_v1", Some("invalid CA certificate")),
    (
        "intermediate_no_keycertsign",
        Some("invalid CA certificate"),
    ),
    (
        "pathlen_zero_two_intermediates",
        Some("path length constraint exceeded"),
    ),
    ("leaf_eku_client", Some("unsuitable certificate purpose")),
    ("leaf_eku_sgc", None),
    (
        "nc_permitted_other_domain",
        Some("permitted subtree violation"),
    ),
    ("nc_excluded_leaf_name", Some("excluded subtree violation")),
    ("crl_empty", None),
    ("crl_revokes_leaf", Some("certificate revoked")),
    ("crl_expired", Some("CRL has expired")),
    ("crl_wrong_signer", Some("CRL signature failure")),
    (
        "crl_missing_for_intermediate",
        Some("unable to get certificate CRL"),
    ),
    ("crl_all_intermediates", None),
    ("crl_idp_user_only", Some("different CRL scope")),
    ("sent_reversed_with_root", None),
    (
        "sent_missing_intermediate",
        Some("unable to get local issuer certificate"),
    ),
    ("root_file_with_intermediate", None),
    (
        "leaf_unknown_critical_extension",
        Some("unhandled critical extension"),
    ),
];

#[test]
fn seed_chains_get_openssl_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/verifier");
    for (name, expected) in SEED_VERDICTS {
        let data = fs::read(dir.join(name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        let chain = generated_chain::generate(&data).expect("a chain");
        let verdicts = pgtls::fuzz::verify_chain(&chain.input()).expect("the root file loads");
        let got = verdicts
            .verify_ca
            .as_ref()
            .err()
            .map(|m| pgtls::fuzz::chain_error_reason(m));
        assert_eq!(got, *expected, "seed {name}: {}", chain.description);
    }
}

/// Seeds of the whole-connection machine (`client_machine` inputs starting `0x80`,
/// `call_sequence` inputs starting `0x80`), recorded from a driver over real rustls
/// servers on the fuzz bodies' deterministic provider, so that the fuzzers start from
/// handshakes that complete. `PGTLS_WRITE_SEEDS=1 cargo test --test fuzz_corpus` writes
/// them (needed again when rustls changes its ClientHello); every run checks that the
/// committed ones still reach the same end.
mod setup_seeds {
    use std::io;
    use std::path::Path;

    use bytes::BytesMut;
    use pgtls::fuzz::{call_op, receive_op, startup_op, SetupRun, SETUP_SQLSTATES};
    use pgtls::plan::{Method, Transport};
    use pgtls::rustls::ServerConnection;
    use pgtls::setup::Action;
    use pgtls::{ConnectionSetup, SslMode, SslNegotiation};

    /// What the server behind one transport does.
    #[derive(Clone, Copy, Debug)]
    pub enum Server {
        /// Answers `S` (SSLRequest) and completes the TLS handshake.
        Tls,
        /// The same in TLS 1.2.
        Tls12,
        /// TLS 1.2, whose Certificate message claims more than rustls joins (64 KiB),
        /// sent in full-sized records after the ServerHello.
        Tls12HugeCertificate,
        /// Answers `N` (SSLRequest) or closes (direct TLS).
        Refuse,
        /// Answers `S`, then resets the connection during the handshake.
        ResetInHandshake,
        /// Answers `S`, then closes during the handshake.
        EofInHandshake,
        /// Never answers: the driver's connect_timeout expires.
        Silent,
    }

    /// The driver's startup on an `Action::Ready`.
    #[derive(Clone, Copy, Debug)]
    pub enum Startup {
        Accept,
        /// Rejected with the SQLSTATE at this index of `SETUP_SQLSTATES`.
        Reject(u8),
        Fail,
        Eof,
    }

    /// One seed: hosts (config index, Unix socket), servers per transport, startups.
    pub struct Seed {
        pub name: &'static str,
        pub hosts: Vec<(usize, bool)>,
        pub servers: Vec<Server>,
        pub startups: Vec<Startup>,
        /// (TLS readies, plaintext readies, done, last host).
        pub expect: (usize, usize, bool, usize),
    }

    pub fn config_index(mode: SslMode, negotiation: SslNegotiation) -> usize {
        pgtls::fuzz::setup_configs()
            .iter()
            .position(|c| c.sslmode() == mode && c.negotiation() == negotiation)
            .expect("a fuzz config")
    }

    fn header(hosts: &[(usize, bool)]) -> Vec<u8> {
        let mut flags = 0u8;
        if hosts.len() > 1 {
            flags |= 1 | if hosts[1].1 { 4 } else { 0 };
        }
        if hosts[0].1 {
            flags |= 2;
        }
        let mut data = vec![0x80, hosts[0].0 as u8, flags];
        if let Some((config, _)) = hosts.get(1) {
            data.push(*config as u8);
        }
        data
    }

    /// The server of one transport.
    struct Peer {
        script: Server,
        method: Method,
        answered: bool,
        tls: Option<ServerConnection>,
        from_client: Vec<u8>,
        /// Said but not yet delivered (a reply longer than one chunk).
        backlog: Vec<u8>,
    }

    impl Peer {
        /// What the server has to say now.
        fn reply(&mut self) -> Vec<u8> {
            let mut reply = Vec::new();
            if self.method == Method::SslRequest && !self.answered {
                if self.from_client.len() < 8 {
                    return reply;
                }
                self.from_client.drain(..8);
                self.answered = true;
                reply.push(match self.script {
                    Server::Refuse => b'N',
                    _ => b'S',
                });
                return reply;
            }
            if let Some(tls) = &mut self.tls {
                let mut rd: &[u8] = &self.from_client;
                while !rd.is_empty() {
                    if tls.read_tls(&mut rd).is_err() {
                        break;
                    }
                }
                self.from_client.clear();
                let _ = tls.process_new_packets();
                while tls.wants_write() {
                    if tls.write_tls(&mut reply).is_err() {
                        break;
                    }
                }
                if matches!(self.script, Server::Tls12HugeCertificate) && reply.len() > 5 {
                    huge_certificate_after_server_hello(&mut reply);
                }
            }
            reply
        }
    }

    /// Drives the machine over the scripted servers, writing down the driver's decisions
    /// as `client_machine` and `call_sequence` inputs.
    pub fn record(seed: &Seed) -> (Vec<u8>, Vec<u8>) {
        let configs = pgtls::fuzz::setup_configs();
        let transport = |unix: bool| match unix {
            true => Transport::UnixSocket,
            false => Transport::Tcp,
        };
        let hosts = seed
            .hosts
            .iter()
            .map(|&(c, unix)| (configs[c].clone(), transport(unix)));
        let mut setup = ConnectionSetup::multi_host(hosts).unwrap();
        let mut machine = header(&seed.hosts);
        let mut calls = header(&seed.hosts);
        let (mut out, mut pending) = (BytesMut::new(), BytesMut::new());
        let mut servers = seed.servers.iter().copied();
        let mut startups = seed.startups.iter().copied();
        let mut peer: Option<Peer> = None;
        for _ in 0..10_000 {
            calls.extend([call_op::POLL_OUTPUT]);
            match setup.poll_output(&mut out).unwrap() {
                Action::Open { method, .. } => {
                    let script = servers.next().unwrap_or(Server::Tls);
                    let tls12 = matches!(script, Server::Tls12 | Server::Tls12HugeCertificate);
                    let tls = (!matches!(script, Server::Refuse | Server::Silent)).then(|| {
                        ServerConnection::new(pgtls::fuzz::recording_server_config(tls12)).unwrap()
                    });
                    peer = Some(Peer {
                        script,
                        method,
                        answered: false,
                        tls,
                        from_client: Vec::new(),
                        backlog: Vec::new(),
                    });
                    out.clear();
                    pending.clear();
                }
                Action::Transmit(_) => {
                    peer.as_mut().unwrap().from_client.extend_from_slice(&out);
                    out.clear();
                    calls.push(call_op::CLEAR_OUTPUT);
                }
                Action::Receive => {
                    let peer = peer.as_mut().unwrap();
                    let past_response = peer.answered || peer.method == Method::DirectTls;
                    match peer.script {
                        Server::Silent => {
                            machine.push(receive_op::TIMEOUT);
                            calls.push(call_op::TIMEOUT);
                            setup.handle_timeout().unwrap();
                            continue;
                        }
                        Server::Refuse if peer.method == Method::DirectTls => {
                            machine.push(receive_op::EOF);
                            calls.push(call_op::EOF);
                            setup.handle_eof().unwrap();
                            continue;
                        }
                        Server::ResetInHandshake if past_response => {
                            machine.extend([receive_op::TRANSPORT_ERROR, 0]);
                            calls.extend([call_op::TRANSPORT_ERROR, 0]);
                            setup
                                .handle_transport_error(io::ErrorKind::ConnectionReset.into())
                                .unwrap();
                            continue;
                        }
                        Server::EofInHandshake if past_response => {
                            machine.push(receive_op::EOF);
                            calls.push(call_op::EOF);
                            setup.handle_eof().unwrap();
                            continue;
                        }
                        _ => {}
                    }
                    if peer.backlog.is_empty() {
                        peer.backlog = peer.reply();
                    }
                    let n = peer.backlog.len().min(usize::from(u16::MAX));
                    let reply: Vec<u8> = peer.backlog.drain(..n).collect();
                    assert!(
                        !reply.is_empty(),
                        "{}: the server has nothing to say",
                        seed.name
                    );
                    machine.push(receive_op::LONG_CHUNK);
                    machine.extend_from_slice(&(reply.len() as u16).to_be_bytes());
                    machine.extend_from_slice(&reply);
                    for piece in reply.chunks(63) {
                        calls.extend([call_op::HANDLE_INPUT, piece.len() as u8]);
                        calls.extend_from_slice(piece);
                        calls.push(call_op::POLL_OUTPUT); // between pieces, as a driver would
                    }
                    calls.pop();
                    pending.extend_from_slice(&reply);
                    setup.handle_input(&mut pending).unwrap();
                }
                Action::Close => {
                    out.clear();
                    pending.clear();
                }
                Action::Ready(_) => match startups.next().unwrap_or(Startup::Accept) {
                    Startup::Accept => {
                        machine.push(startup_op::ACCEPTED);
                        calls.push(call_op::STARTUP_ACCEPTED);
                        setup.handle_startup_accepted().unwrap();
                    }
                    Startup::Reject(sqlstate) => {
                        machine.extend([startup_op::REJECTED, sqlstate]);
                        calls.extend([call_op::STARTUP_REJECTED, sqlstate]);
                        let raw = error_response(SETUP_SQLSTATES[usize::from(sqlstate)]);
                        setup.handle_startup_rejected(&raw).unwrap();
                    }
                    Startup::Fail => {
                        let message = b"channel binding required, but server authenticated without channel binding";
                        machine.extend([startup_op::FAILED, message.len() as u8]);
                        machine.extend_from_slice(message);
                        calls.push(call_op::STARTUP_FAILED);
                        setup
                            .handle_startup_failed(String::from_utf8_lossy(message))
                            .unwrap();
                    }
                    Startup::Eof => {
                        machine.push(startup_op::EOF);
                        calls.push(call_op::EOF);
                        setup.handle_eof().unwrap();
                    }
                },
                Action::Done | Action::Failed(_) => {
                    // Then misuse of every kind (call_sequence only).
                    calls.extend([
                        call_op::POLL_OUTPUT,
                        call_op::HANDLE_INPUT,
                        3,
                        b'S',
                        0,
                        0,
                        call_op::EOF,
                        call_op::TRANSPORT_ERROR,
                        1,
                        call_op::TIMEOUT,
                        call_op::DATA_AFTER_SSL_RESPONSE,
                        call_op::STARTUP_ACCEPTED,
                        call_op::STARTUP_REJECTED_RAW,
                        0,
                        call_op::STARTUP_REJECTED,
                        0,
                        call_op::STARTUP_FAILED,
                        call_op::STARTUP_ERROR,
                    ]);
                    return (machine, calls);
                }
            }
        }
        panic!("{}: the recording did not finish", seed.name);
    }

    /// Keeps the first record (the ServerHello) and follows it with a Certificate message
    /// of 0x11000 bytes in 16 KiB handshake records.
    fn huge_certificate_after_server_hello(reply: &mut Vec<u8>) {
        let first = 5 + usize::from(u16::from_be_bytes([reply[3], reply[4]]));
        reply.truncate(first);
        let mut message = vec![11, 0x01, 0x10, 0x00];
        message.resize(4 + 0x11000, 0);
        for fragment in message.chunks(16 * 1024) {
            reply.extend([22, 3, 3]);
            reply.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
            reply.extend_from_slice(fragment);
        }
    }

    fn error_response(sqlstate: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for (field, value) in [
            (b'S', "FATAL"),
            (b'C', sqlstate),
            (b'M', "fuzzed rejection"),
        ] {
            body.push(field);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        msg.extend_from_slice(&body);
        msg
    }

    pub fn seeds() -> Vec<Seed> {
        use SslMode::*;
        use SslNegotiation::{Direct, Postgres};
        let c = config_index;
        let tls_setup_error = pgtls::fuzz::setup_configs().len() - 1;
        let seed = |name,
                    hosts: Vec<(usize, bool)>,
                    servers: Vec<Server>,
                    startups: Vec<Startup>,
                    expect| Seed {
            name,
            hosts,
            servers,
            startups,
            expect,
        };
        vec![
            seed(
                "setup_disable",
                vec![(c(Disable, Postgres), false)],
                vec![],
                vec![],
                (0, 1, true, 0),
            ),
            seed(
                "setup_allow_plain",
                vec![(c(Allow, Postgres), false)],
                vec![],
                vec![],
                (0, 1, true, 0),
            ),
            seed(
                "setup_prefer_tls",
                vec![(c(Prefer, Postgres), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_require_tls",
                vec![(c(Require, Postgres), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_verify_ca_tls",
                vec![(c(VerifyCa, Postgres), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_verify_full_tls",
                vec![(c(VerifyFull, Postgres), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_require_direct",
                vec![(c(Require, Direct), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_require_tls12",
                vec![(c(Require, Postgres), false)],
                vec![Server::Tls12],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_verify_full_direct_tls12",
                vec![(c(VerifyFull, Direct), false)],
                vec![Server::Tls12],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_verify_ca_direct",
                vec![(c(VerifyCa, Direct), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_verify_full_direct",
                vec![(c(VerifyFull, Direct), false)],
                vec![Server::Tls],
                vec![],
                (1, 0, true, 0),
            ),
            seed(
                "setup_prefer_refused_plain",
                vec![(c(Prefer, Postgres), false)],
                vec![Server::Refuse],
                vec![],
                (0, 1, true, 0),
            ),
            seed(
                "setup_require_refused",
                vec![(c(Require, Postgres), false)],
                vec![Server::Refuse],
                vec![],
                (0, 0, false, 0),
            ),
            seed(
                "setup_direct_refused",
                vec![(c(Require, Direct), false)],
                vec![Server::Refuse],
                vec![],
                (0, 0, false, 0),
            ),
            seed(
                "setup_prefer_rejected_28000_plain",
                vec![(c(Prefer, Postgres), false)],
                vec![Server::Tls, Server::Tls],
                vec![Startup::Reject(1), Startup::Accept],
                (1, 1, true, 0),
            ),
            seed(
                "setup_allow_rejected_28000_tls",
                vec![(c(Allow, Postgres), false)],
                vec![Server::Tls, Server::Tls],
                vec![Startup::Reject(1), Startup::Accept],
                (1, 1, true, 0),
            ),
            seed(
                "setup_prefer_reset_in_handshake_plain",
                vec![(c(Prefer, Postgres), false)],
                vec![Server::ResetInHandshake, Server::Tls],
                vec![],
                (0, 1, true, 0),
            ),
            seed(
                "setup_require_eof_in_handshake",
                vec![(c(Require, Postgres), false)],
                vec![Server::EofInHandshake],
                vec![],
                (0, 0, false, 0),
            ),
            seed(
                "setup_require_startup_failed",
                vec![(c(Require, Postgres), false)],
                vec![Server::Tls],
                vec![Startup::Fail],
                (1, 0, false, 0),
            ),
            seed(
                "setup_require_startup_eof",
                vec![(c(Require, Direct), false)],
                vec![Server::Tls],
                vec![Startup::Eof],
                (1, 0, false, 0),
            ),
            seed(
                "setup_prefer_unix_socket",
                vec![(c(Prefer, Postgres), true)],
                vec![],
                vec![],
                (0, 1, true, 0),
            ),
            seed(
                "setup_tls_setup_error",
                vec![(tls_setup_error, false)],
                vec![],
                vec![],
                (0, 0, false, 0),
            ),
            seed(
                "setup_two_hosts_timeout_then_tls",
                vec![
                    (c(Require, Postgres), false),
                    (c(VerifyFull, Direct), false),
                ],
                vec![Server::Silent, Server::Tls],
                vec![],
                (1, 0, true, 1),
            ),
            seed(
                "setup_two_hosts_57P03_then_tls",
                vec![(c(Prefer, Postgres), false), (c(Require, Postgres), false)],
                vec![Server::Tls, Server::Tls],
                vec![Startup::Reject(0), Startup::Accept],
                (2, 0, true, 1),
            ),
            seed(
                "setup_two_hosts_both_fail",
                vec![
                    (c(Require, Direct), false),
                    (c(VerifyFull, Postgres), false),
                ],
                vec![Server::Silent, Server::EofInHandshake],
                vec![],
                (0, 0, false, 1),
            ),
        ]
    }

    pub fn check(name: &str, run: &SetupRun, expect: (usize, usize, bool, usize)) {
        let got = (run.ready_tls, run.ready_plaintext, run.done, run.last_host);
        assert_eq!(got, expect, "seed {name}: {run:?}");
        assert_eq!(run.done, run.failed.is_none(), "seed {name}: {run:?}");
    }

    pub fn dirs() -> (std::path::PathBuf, std::path::PathBuf) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        (root.join("client_machine"), root.join("call_sequence"))
    }
}

/// The recorded seeds of the whole-connection machine reach Ready (real TLS handshakes
/// on every TLS mode, verify-full included), Done and Failed as named; recording them
/// again gives inputs that do the same (`PGTLS_WRITE_SEEDS=1` writes those).
#[test]
fn setup_seeds_reach_ready_done_and_failed() {
    let (machine_dir, calls_dir) = setup_seeds::dirs();
    let write = std::env::var_os("PGTLS_WRITE_SEEDS").is_some();
    for seed in setup_seeds::seeds() {
        let (machine, calls) = setup_seeds::record(&seed);
        let fresh = pgtls::fuzz::connection_setup(&machine);
        setup_seeds::check(seed.name, &fresh, seed.expect);
        pgtls::fuzz::call_sequence_target(&calls);
        let machine_path = machine_dir.join(seed.name);
        let calls_path = calls_dir.join(seed.name);
        if write {
            fs::write(&machine_path, &machine).unwrap();
            fs::write(&calls_path, &calls).unwrap();
        }
        let committed = fs::read(&machine_path)
            .unwrap_or_else(|e| panic!("seed {} missing ({e}): PGTLS_WRITE_SEEDS=1", seed.name));
        let replayed = pgtls::fuzz::connection_setup(&committed);
        setup_seeds::check(seed.name, &replayed, seed.expect);
        assert!(
            calls_path.exists(),
            "call_sequence seed {} missing",
            seed.name
        );
    }
}

/// The machine's memory bound under a server that sends a TLS 1.2 Certificate message
/// larger than rustls joins (64 KiB, in full records): the attempt fails instead of
/// buffering more or asking to read forever, and `prefer` goes on in plaintext. Not a
/// committed seed (it is 70 KiB long).
#[test]
fn huge_certificate_message_fails_the_attempt() {
    use setup_seeds::{config_index, record, Seed, Server};
    let seed = Seed {
        name: "huge_certificate",
        hosts: vec![(
            config_index(pgtls::SslMode::Prefer, pgtls::SslNegotiation::Postgres),
            false,
        )],
        servers: vec![Server::Tls12HugeCertificate, Server::Tls],
        startups: vec![],
        expect: (0, 1, true, 0),
    };
    let (machine, _) = record(&seed);
    let run = pgtls::fuzz::connection_setup(&machine);
    setup_seeds::check(seed.name, &run, seed.expect);
    let first = run.attempt_errors[0].as_deref().unwrap_or_default();
    assert!(first.contains("HandshakePayloadTooLarge"), "{run:?}");
}
