//! libpq's files and defaults, with psql as the referee on real PostgreSQL servers:
//! service files (`service=`, `PGSERVICE`, `PGSERVICEFILE`, `PGSYSCONFDIR`), the password
//! file (`PGPASSFILE`, wildcards, escapes, the permission rule) and the Unix-socket
//! default host (no TLS there).
//!
//! pgtls's side is the probe (cli/src/probe.rs) for connections and
//! `Settings::password_for` / `password_file_lookup` for the password file. Each case runs
//! against every installed server, judged by that server's libpq (15: Debian's, 18: the
//! PG18 package's). Skips with a notice when PostgreSQL is not installed.
//!
//! The last tests feed arbitrary text to both parsers (as files, through the public API):
//! nothing may panic.

use pgtls_testkit::pg;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use pg::{Hba, Outcome, PgServer, PgVersion, ServerTls, SCRAM_USER, SUPERUSER};
use pgtls::libpq::{ConnParams, Environment, PasswordFileLookup};
use pgtls_testkit::certs::{Ca, LeafSpec};
use support::probe::{probe, ProbeReport};

/// The environment psql runs with (see `pg::run_psql`) plus `extra`, for pgtls.
fn pgtls_env(server: &PgServer, extra: &[(&str, &str)]) -> Environment {
    let home = server.home_dir.display().to_string();
    let mut vars: Vec<(String, String)> = vec![
        ("HOME".into(), home.clone()),
        ("PGSYSCONFDIR".into(), home),
        (
            "PGCONNECT_TIMEOUT".into(),
            pg::PSQL_CONNECT_TIMEOUT_SECS.into(),
        ),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Environment::from_vars(vars).with_os_user(SUPERUSER)
}

fn outcome_of(report: &ProbeReport) -> Outcome {
    Outcome {
        connected: report.ok,
        encrypted: if report.ok { report.tls } else { None },
        error: report.error.clone(),
    }
}

/// Runs psql and the probe with the same connection string and environment; both must
/// connect the same way, or fail with the same message.
fn same_outcome(server: &PgServer, conninfo: &str, env: &[(&str, &str)], pgtls: Environment) {
    let libpq = server.connect_outcome_via_psql_env(conninfo, env);
    let ours = outcome_of(&probe(conninfo, &pgtls));
    let context = format!(
        "{} {conninfo:?} env {env:?}\n  psql : {libpq}\n  pgtls: {ours}",
        server.version()
    );
    assert_eq!(libpq.connected, ours.connected, "{context}");
    assert_eq!(libpq.encrypted, ours.encrypted, "{context}");
    if !libpq.connected {
        assert_eq!(libpq.error, ours.error, "{context}");
    }
}

fn servers(tls: Option<ServerTls>, hba: Hba) -> Vec<PgServer> {
    if !pg::servers_available() {
        return Vec::new();
    }
    PgVersion::ALL
        .into_iter()
        .filter_map(pg::install_or_skip)
        .map(|install| PgServer::start(&install, tls.clone(), hba.clone()).expect("server starts"))
        .collect()
}

struct Pki {
    root_file: PathBuf,
    tls: ServerTls,
}

/// A CA and a server certificate for `localhost` only (so `127.0.0.1` is a wrong host).
fn pki(dir: &Path) -> Pki {
    let ca = Ca::root("pgtls files root");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let root_file = dir.join("root.crt");
    fs::write(&root_file, ca.root_pem()).unwrap();
    Pki {
        root_file,
        tls: ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone()),
    }
}

fn service_text(server: &PgServer, root: &Path) -> String {
    let port = server.port;
    let root = root.display();
    format!(
        "# services for {version}\n\
         [good]\n\
         host=localhost\n\
         hostaddr=127.0.0.1\n\
         port={port}\n\
         user={SUPERUSER}\n\
         dbname=postgres\n\
         sslmode=verify-full\n\
         sslrootcert={root}\n\
         \n\
         [wronghost]\n\
         host=127.0.0.1\n\
         port={port}\n\
         user={SUPERUSER}\n\
         dbname=postgres\n\
         sslmode=verify-full\n\
         sslrootcert={root}\n\
         [broken]\n\
         host=127.0.0.1\n\
         port = {port}\n\
         [nested]\n\
         service=good\n\
         [unknown]\n\
         nosuchkeyword=1\n",
        version = server.version()
    )
}

#[test]
fn service_files_against_psql() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    for server in servers(Some(pki.tls.clone()), Hba::Host) {
        let file = dir.path().join(format!("services-{}.conf", server.port));
        fs::write(&file, service_text(&server, &pki.root_file)).unwrap();
        let file = file.display().to_string();
        let env = [("PGSERVICEFILE", file.as_str())];
        let with_file = || pgtls_env(&server, &env);

        // A good service connects over TLS with verify-full; a wrong host fails with
        // libpq's host-name message.
        same_outcome(&server, "service=good", &env, with_file());
        let libpq = server.connect_outcome_via_psql_env("service=good", &env);
        assert_eq!(libpq.encrypted, Some(true), "{libpq}");
        same_outcome(&server, "service=wronghost", &env, with_file());
        let libpq = server.connect_outcome_via_psql_env("service=wronghost", &env);
        assert!(
            libpq.error_contains("does not match host name \"127.0.0.1\""),
            "{libpq}"
        );

        // PGSERVICE names the service; the string still wins over the service.
        let by_env = [("PGSERVICEFILE", file.as_str()), ("PGSERVICE", "wronghost")];
        same_outcome(&server, "", &by_env, pgtls_env(&server, &by_env));
        same_outcome(
            &server,
            "host=localhost hostaddr=127.0.0.1",
            &by_env,
            pgtls_env(&server, &by_env),
        );

        // The system-wide file in PGSYSCONFDIR.
        let sysconf = dir.path().join(format!("sysconf-{}", server.port));
        fs::create_dir_all(&sysconf).unwrap();
        fs::copy(&file, sysconf.join("pg_service.conf")).unwrap();
        let sysconf = sysconf.display().to_string();
        let by_sysconf = [("PGSYSCONFDIR", sysconf.as_str())];
        for service in ["service=good", "service=wronghost"] {
            same_outcome(
                &server,
                service,
                &by_sysconf,
                pgtls_env(&server, &by_sysconf),
            );
        }

        // Bad input: libpq's messages with file and line.
        for (conninfo, expected) in [
            (
                "service=nosuch",
                "definition of service \"nosuch\" not found".to_owned(),
            ),
            (
                "service=broken",
                format!("syntax error in service file \"{file}\", line 20"),
            ),
            (
                "service=nested",
                format!("nested service specifications not supported in service file \"{file}\", line 22"),
            ),
            (
                "service=unknown",
                format!("syntax error in service file \"{file}\", line 24"),
            ),
        ] {
            same_outcome(&server, conninfo, &env, with_file());
            let libpq = server.connect_outcome_via_psql_env(conninfo, &env);
            assert_eq!(libpq.error.as_deref(), Some(expected.as_str()), "{libpq}");
        }
        let missing = dir.path().join("missing.conf").display().to_string();
        let env = [("PGSERVICEFILE", missing.as_str())];
        same_outcome(&server, "service=good", &env, pgtls_env(&server, &env));
    }
}

#[test]
fn password_file_against_psql() {
    const PASSWORD: &str = "pa:ss\\wd";
    let dir = tempfile::tempdir().unwrap();
    for server in servers(None, Hba::Scram) {
        server
            .admin_sql(&format!("ALTER ROLE {SCRAM_USER} PASSWORD 'pa:ss\\wd'"))
            .expect("password set");
        let port = server.port;
        let file = dir.path().join(format!("pgpass-{port}"));
        fs::write(
            &file,
            format!(
                "# wildcards and escapes\n\
                 127.0.0.1:1:*:*:wrong-port\n\
                 127.0.0.1:{port}:otherdb:*:wrong-db\n\
                 *:{port}:postgres:{SCRAM_USER}:pa\\:ss\\\\wd\n\
                 *:*:*:*:fallback\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.display().to_string();
        let env = [("PGPASSFILE", path.as_str())];
        let conninfo = format!("host=127.0.0.1 port={port} user={SCRAM_USER} dbname=postgres");

        // psql authenticates with the file's password; pgtls's lookup gives the same one,
        // and the probe authenticates with it.
        let libpq = server.connect_outcome_via_psql_env(&conninfo, &env);
        assert!(libpq.connected, "{} psql: {libpq}", server.version());
        let settings = ConnParams::parse(&conninfo)
            .unwrap()
            .resolve(&pgtls_env(&server, &env))
            .unwrap();
        let password = settings.password_for(&settings.hosts()[0]);
        assert_eq!(password.as_deref(), Some(PASSWORD));
        let with_password = pgtls_env(&server, &[("PGPASSWORD", PASSWORD)]);
        let report = probe(&conninfo, &with_password);
        assert!(report.ok, "{}: {:?}", server.version(), report.error);

        // Another database falls to the wildcard line: both fail to authenticate.
        let other = format!("host=127.0.0.1 port={port} user={SCRAM_USER} dbname=otherdb");
        let libpq = server.connect_outcome_via_psql_env(&other, &env);
        assert!(!libpq.connected, "{libpq}");
        let settings = ConnParams::parse(&other)
            .unwrap()
            .resolve(&pgtls_env(&server, &env))
            .unwrap();
        assert_eq!(
            settings.password_for(&settings.hosts()[0]).as_deref(),
            Some("wrong-db")
        );

        // Group-readable: psql warns and goes on without it; pgtls refuses with the same
        // warning.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let psql = server.psql_env(&conninfo, pg::SSL_QUERY, &env);
        assert!(!psql.success(), "{psql:?}");
        let settings = ConnParams::parse(&conninfo)
            .unwrap()
            .resolve(&pgtls_env(&server, &env))
            .unwrap();
        let lookup = settings.password_file_lookup(&settings.hosts()[0]);
        let PasswordFileLookup::Refused(warning) = &lookup else {
            panic!("expected a refusal, got {lookup:?}");
        };
        assert!(
            psql.stderr.lines().any(|line| line == warning),
            "{warning:?} not in psql's stderr:\n{}",
            psql.stderr
        );
        assert_eq!(settings.password_for(&settings.hosts()[0]), None);
    }
}

/// A symbolic link `<dir>/.s.PGSQL.<port>` to the server's socket, removed on drop.
struct SocketLink(PathBuf);

impl SocketLink {
    fn new(dir: &Path, server: &PgServer) -> Option<SocketLink> {
        let name = format!(".s.PGSQL.{}", server.port);
        let link = dir.join(&name);
        std::os::unix::fs::symlink(server.socket_dir.join(&name), &link).ok()?;
        Some(SocketLink(link))
    }
}

impl Drop for SocketLink {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn socket_default_against_psql() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    for server in servers(Some(pki.tls.clone()), Hba::Host) {
        let port = server.port;
        let conninfo = format!("port={port} user={SUPERUSER} dbname=postgres sslmode=require");

        // Debian's libpq 15 goes to /var/run/postgresql, where this server has no socket:
        // both fail naming the same socket.
        if server.version() == PgVersion::V15 {
            same_outcome(&server, &conninfo, &[], pgtls_env(&server, &[]));
            let libpq = server.connect_outcome_via_psql(&conninfo);
            let socket = format!("\"/var/run/postgresql/.s.PGSQL.{port}\"");
            assert!(libpq.error_contains(&socket), "{libpq}");
        }

        // Every libpq's own default directory (Debian's 15: /var/run/postgresql; the PG18
        // package: /tmp) cannot hold this server's socket, so the default is checked with
        // pgtls's override: PGHOST names the socket directory for psql, the override
        // names it for pgtls. Both connect without TLS although sslmode=require.
        let socket_dir = server.socket_dir.display().to_string();
        let env = [("PGHOST", socket_dir.as_str())];
        let libpq = server.connect_outcome_via_psql_env(&conninfo, &env);
        assert_eq!(
            (libpq.connected, libpq.encrypted),
            (true, Some(false)),
            "{libpq}"
        );
        same_outcome(
            &server,
            &conninfo,
            &env,
            pgtls_env(&server, &[]).with_default_socket_dir(&socket_dir),
        );

        // The PG18 package's libpq defaults to /tmp: a link there lets psql connect with
        // no host at all, and pgtls with the same default does the same.
        if server.version() == PgVersion::V18 {
            let Some(_link) = SocketLink::new(Path::new("/tmp"), &server) else {
                pg::report_skip(Some("/tmp socket link"), "cannot link into /tmp");
                continue;
            };
            let libpq = server.connect_outcome_via_psql(&conninfo);
            assert_eq!(
                (libpq.connected, libpq.encrypted),
                (true, Some(false)),
                "{libpq}"
            );
            same_outcome(
                &server,
                &conninfo,
                &[],
                pgtls_env(&server, &[]).with_default_socket_dir("/tmp"),
            );
        }
    }
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            "(\\[[a-z]{0,3}\\]?|[a-z_]{0,10}=?[ -~]{0,10}|#.*|\\s*|[*:\\\\a-z0-9]{0,20})(\n(\\[[a-z]{0,3}\\]?|[a-z_]{0,10}=?[ -~]{0,10}|[*:\\\\a-z0-9]{0,20}|\r)){0,8}"
                .prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn service_files(text in text(), service in "[a-z]{0,3}") {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("pg_service.conf");
            fs::write(&file, &text).unwrap();
            let env = Environment::from_vars([
                ("PGSERVICEFILE", file.display().to_string()),
                ("PGSYSCONFDIR", dir.path().display().to_string()),
            ])
            .with_os_user("u");
            if let Ok(params) = ConnParams::parse(&format!("service='{service}'")) {
                let _ = params.resolve(&env);
            }
        }

        #[test]
        fn password_files(text in text(), host in "[a-z*:\\\\]{0,4}", user in "[a-z*]{0,3}") {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("pgpass");
            fs::write(&file, &text).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
            let env = Environment::from_vars([("PGPASSFILE", file.display().to_string())])
                .with_os_user("u");
            let mut params = ConnParams::new();
            params.set("host", host).unwrap();
            params.set("user", user).unwrap();
            if let Ok(settings) = params.resolve(&env) {
                for target in settings.hosts() {
                    let _ = settings.password_for(target);
                }
            }
        }
    }
}
