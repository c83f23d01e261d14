//! pgbouncer with client TLS in front of PostgreSQL 15 (`testkit/src/pgbouncer.rs`): pgtls
//! with `sslmode=verify-full` reaches `SELECT 1` through it, and psql (libpq) through the same
//! pooler agrees.
//!
//! Skips with a notice when PostgreSQL or pgbouncer is not installed
//! (`scripts/install-postgres.sh`, `apt-get install pgbouncer`); fails instead with
//! `PGTLS_REQUIRE_SERVERS=1`.

mod support;

use pgtls::libpq::{ConnParams, Environment};
use pgtls_testkit::certs::{Ca, LeafSpec};
use pgtls_testkit::pg::{self, Hba, PgServer, PgVersion};
use pgtls_testkit::pgbouncer::{self, BouncerTls, PgBouncer};

use support::probe;

/// PostgreSQL 15 without TLS, pgbouncer in front of it presenting a leaf for `localhost`
/// from a test CA, and that CA's root in a file for `sslrootcert`.
struct Fixture {
    bouncer: PgBouncer,
    server: PgServer,
    root_file: std::path::PathBuf,
}

impl Fixture {
    fn start() -> Option<Fixture> {
        if !pg::servers_available() {
            eprintln!("{}", pg::SKIP_NOTICE);
            return None;
        }
        let binary = pgbouncer::pgbouncer_or_skip()?;
        let install = pg::install_or_skip(PgVersion::V15)?;
        let server = PgServer::start(&install, None, Hba::Host).expect("start PostgreSQL 15");
        let ca = Ca::root("pgtls pgbouncer root");
        let leaf = ca.leaf(LeafSpec::server("localhost"));
        let tls = BouncerTls::new(leaf.chain_pem(), leaf.key_pkcs8_pem());
        let bouncer = PgBouncer::start(&binary, &server, &tls).expect("start pgbouncer");
        let root_file = server.root_dir.join("pgbouncer-root.crt");
        std::fs::write(&root_file, ca.cert_pem()).expect("root file");
        Some(Fixture {
            bouncer,
            server,
            root_file,
        })
    }

    /// verify-full through the pooler, by host name (`localhost` at 127.0.0.1).
    fn verify_full(&self) -> String {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={} dbname=postgres \
             sslmode=verify-full sslrootcert={}",
            self.bouncer.port,
            pg::SUPERUSER,
            self.root_file.display()
        )
    }
}

#[test]
fn verify_full_through_pgbouncer_reaches_select_1() {
    let Some(fixture) = Fixture::start() else {
        return;
    };
    let conninfo = fixture.verify_full();

    // pgtls: the probe connects (libpq's plan, verify-full) and runs its startup and query.
    let env = Environment::empty().with_home(Some(fixture.server.home_dir.clone()));
    let report = probe::probe(&conninfo, &env);
    assert!(
        report.ok,
        "pgtls through pgbouncer: {:?}\n--- pgbouncer log ---\n{}",
        report.error,
        fixture.bouncer.log()
    );
    assert_eq!(report.tls, Some(true), "pgtls through pgbouncer: not TLS");
    assert_eq!(report.protocol.as_deref(), Some("TLSv1.3"));

    // pgtls: SELECT 1 over the tokio-postgres integration, same settings.
    let settings = ConnParams::parse(&conninfo)
        .and_then(|p| p.resolve(&env))
        .expect("settings");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let one: i32 = runtime.block_on(async {
        let (client, connection) = pgtls::tokio_postgres::connect_settings(&settings)
            .await
            .expect("pgtls connects through pgbouncer");
        let connection = tokio::spawn(connection);
        let one = client
            .query_one("SELECT 1", &[])
            .await
            .expect("SELECT 1")
            .get(0);
        drop(client);
        let _ = connection.await;
        one
    });
    assert_eq!(one, 1);

    // libpq agrees: psql through the same pooler with the same settings.
    let psql = fixture.server.psql(&conninfo, "SELECT 1");
    assert!(
        psql.success(),
        "psql through pgbouncer: {:?}\n--- pgbouncer log ---\n{}",
        psql.error_message(),
        fixture.bouncer.log()
    );
    assert_eq!(psql.stdout.trim(), "1");
}

#[test]
fn pgbouncer_refuses_plaintext_and_the_wrong_host_name_like_libpq() {
    let Some(fixture) = Fixture::start() else {
        return;
    };
    let env = Environment::empty().with_home(Some(fixture.server.home_dir.clone()));
    for conninfo in [
        // client_tls_sslmode = require: pgbouncer refuses a plaintext client.
        fixture.bouncer.conninfo("sslmode=disable"),
        // The leaf names localhost, not 127.0.0.1.
        format!(
            "{} sslmode=verify-full sslrootcert={}",
            fixture.bouncer.base_conninfo(),
            fixture.root_file.display()
        ),
    ] {
        let ours = probe::probe(&conninfo, &env);
        let libpq = fixture.server.psql(&conninfo, "SELECT 1");
        assert!(!ours.ok, "{conninfo}: pgtls connected");
        assert!(!libpq.success(), "{conninfo}: psql connected");
        let (ours, libpq) = (
            ours.error.unwrap_or_default(),
            libpq.error_message().unwrap_or_default(),
        );
        eprintln!("  {conninfo}\n    -> {ours}");
        assert_eq!(ours, libpq, "{conninfo}: pgtls and libpq disagree");
    }
}
