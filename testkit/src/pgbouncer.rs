//! pgbouncer in front of a test-kit PostgreSQL server, with client TLS: the connection
//! pooler pgtls's resumption tests and connection benchmarks talk to.
//!
//! * [`pgbouncer_path`] locates pgbouncer (`PGTLS_PGBOUNCER`, else [`PGBOUNCER_DEFAULT`], the
//!   Debian package's binary); [`pgbouncer_or_skip`] reports a skip the way the kit's other
//!   real-server tests do (or panics with `PGTLS_REQUIRE_SERVERS=1`).
//! * [`PgBouncer::start`] writes `pgbouncer.ini`, an auth file and the TLS files into a fresh
//!   `/tmp/pgtls-pgbouncer-*` directory and runs pgbouncer in the foreground as the `postgres`
//!   OS user when the tests run as root (pgbouncer refuses to run as root), listening on
//!   127.0.0.1 only, on a free port, with no unix socket. It returns once pgbouncer accepts
//!   TCP connections. [`Drop`] kills it and removes the directory; pgbouncers left behind by a
//!   killed test process are stopped by the next [`PgBouncer::start`].
//!
//! The configuration: one pool per database, all forwarded to the PostgreSQL server over
//! plaintext TCP on 127.0.0.1 (`server_tls_sslmode = disable`: the pooler's own cost is not
//! what is measured), `pool_mode = session`, `auth_type = trust` with the superuser in the
//! auth file (no password prompt anywhere), client TLS from the given certificate and key
//! with `client_tls_sslmode` as given (TLS 1.2 and 1.3 allowed, pgbouncer's `secure`).
//! pgbouncer's OpenSSL issues TLS 1.3 session tickets and keeps a TLS 1.2 session cache by
//! default: unlike PostgreSQL, it resumes.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use crate::pg::{self, PgServer, SUPERUSER};

/// Where the Debian package installs pgbouncer.
pub const PGBOUNCER_DEFAULT: &str = "/usr/sbin/pgbouncer";
/// The environment variable naming another pgbouncer binary.
pub const PGBOUNCER_ENV: &str = "PGTLS_PGBOUNCER";
/// How long [`PgBouncer::start`] waits for pgbouncer to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

const TMP_PREFIX: &str = "pgtls-pgbouncer-";
const PID_FILE: &str = "pgbouncer.pid";
const OWNER_FILE: &str = "owner.pid";
/// pgbouncer's process id as the kit spawned it (pgbouncer's own pidfile is [`PID_FILE`]).
const CHILD_FILE: &str = "child.pid";

/// The pgbouncer binary to run: `$PGTLS_PGBOUNCER` or [`PGBOUNCER_DEFAULT`], when it exists
/// and is executable.
pub fn pgbouncer_path() -> Option<PathBuf> {
    let path = std::env::var_os(PGBOUNCER_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PGBOUNCER_DEFAULT));
    let executable = fs::metadata(&path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    executable.then_some(path)
}

/// The pgbouncer binary, or `None` after reporting the skip (see [`pg::report_skip`]); with
/// `PGTLS_REQUIRE_SERVERS=1` a missing pgbouncer panics instead.
pub fn pgbouncer_or_skip() -> Option<PathBuf> {
    if let Some(path) = pgbouncer_path() {
        return Some(path);
    }
    let missing = format!("pgbouncer ({PGBOUNCER_DEFAULT} or ${PGBOUNCER_ENV})");
    if pg::require_servers() {
        panic!(
            "PGTLS_REQUIRE_SERVERS=1 but {missing} is not installed (apt-get install pgbouncer)"
        );
    }
    pg::report_skip(
        Some("the pgbouncer part"),
        &format!("missing {missing}; apt-get install pgbouncer"),
    );
    None
}

/// pgbouncer's client-side TLS: what it presents to clients and how it treats them.
#[derive(Clone, Debug)]
pub struct BouncerTls {
    /// Leaf first, then any intermediates (`client_tls_cert_file`).
    pub cert_pem: String,
    /// The leaf's private key (`client_tls_key_file`).
    pub key_pem: String,
    /// `client_tls_sslmode`: `require` (the default here), `allow`, `prefer`, `verify-ca`, ….
    pub sslmode: String,
}

impl BouncerTls {
    /// Client TLS with `client_tls_sslmode = require` (plaintext clients are refused).
    pub fn new(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> BouncerTls {
        BouncerTls {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            sslmode: "require".to_owned(),
        }
    }

    /// The same certificate with another `client_tls_sslmode`.
    pub fn sslmode(mut self, sslmode: &str) -> BouncerTls {
        self.sslmode = sslmode.to_owned();
        self
    }
}

/// A running pgbouncer on 127.0.0.1 in front of one PostgreSQL server. Dropping it kills
/// pgbouncer and removes its directory.
pub struct PgBouncer {
    /// The port pgbouncer listens on (127.0.0.1).
    pub port: u16,
    /// The temporary directory holding the configuration, TLS files, log and pidfile.
    pub root_dir: PathBuf,
    /// pgbouncer's log file.
    pub log_file: PathBuf,
    child: Child,
    // Last field: dropped after `Drop::drop` has killed the child.
    _dir: pg::TempDir,
}

impl fmt::Debug for PgBouncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBouncer")
            .field("port", &self.port)
            .field("pid", &self.child.id())
            .field("root_dir", &self.root_dir)
            .finish()
    }
}

impl PgBouncer {
    /// Starts `pgbouncer` (see [`pgbouncer_path`]) in front of `server`, with client TLS
    /// `tls`, and waits until it accepts TCP connections. The server must let `postgres` in
    /// from 127.0.0.1 without a password (e.g. [`pg::Hba::Host`]).
    pub fn start(pgbouncer: &Path, server: &PgServer, tls: &BouncerTls) -> io::Result<PgBouncer> {
        cleanup_stale();
        let dir = pg::TempDir::new(TMP_PREFIX)?;
        let root = dir.path.clone();
        fs::write(root.join(OWNER_FILE), format!("{}\n", std::process::id()))?;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        pg::chown_to_server(&root)?;
        write_owned(&root.join("server.crt"), &tls.cert_pem, 0o644)?;
        write_owned(&root.join("server.key"), &tls.key_pem, 0o600)?;
        write_owned(
            &root.join("userlist.txt"),
            &format!("\"{SUPERUSER}\" \"\"\n"),
            0o600,
        )?;
        let log_file = root.join("pgbouncer.log");
        let mut last_err = None;
        for _attempt in 0..5 {
            let port = pg::pick_port()?;
            let ini = root.join("pgbouncer.ini");
            write_owned(&ini, &config_text(&root, port, server.port, tls), 0o644)?;
            let _ = fs::remove_file(&log_file);
            let child = spawn(pgbouncer, &ini, &root)?;
            fs::write(root.join(CHILD_FILE), format!("{}\n", child.id()))?;
            match wait_until_accepting(child, port, &log_file) {
                Ok(child) => {
                    return Ok(PgBouncer {
                        port,
                        root_dir: root,
                        log_file,
                        child,
                        _dir: dir,
                    })
                }
                Err((e, log)) => {
                    let collision = log.contains("Address already in use");
                    last_err = Some(e);
                    if !collision {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("pgbouncer did not start")))
    }

    /// `host=127.0.0.1 port=N user=postgres dbname=postgres`
    pub fn base_conninfo(&self) -> String {
        pg::loopback_conninfo(self.port)
    }

    /// `base_conninfo()` followed by `extra` (later keywords win in libpq).
    pub fn conninfo(&self, extra: &str) -> String {
        format!("{} {extra}", self.base_conninfo())
    }

    /// pgbouncer's whole log so far.
    pub fn log(&self) -> String {
        read_log(&self.log_file)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pgbouncer.ini for a pooler on `port` in front of the server on `server_port`.
fn config_text(root: &Path, port: u16, server_port: u16, tls: &BouncerTls) -> String {
    let file = |name: &str| root.join(name).display().to_string();
    format!(
        "; written by the pgtls test kit (testkit/src/pgbouncer.rs)
[databases]
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
logfile = {log}
pidfile = {pid}
auth_type = trust
auth_file = {users}
pool_mode = session
max_client_conn = 1200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
server_tls_sslmode = disable
client_tls_sslmode = {sslmode}
client_tls_cert_file = {cert}
client_tls_key_file = {key}
client_tls_protocols = secure
",
        log = file("pgbouncer.log"),
        pid = file(PID_FILE),
        users = file("userlist.txt"),
        sslmode = tls.sslmode,
        cert = file("server.crt"),
        key = file("server.key"),
    )
}

/// Writes `contents` to `path` with `mode`, owned by the server's OS user when we are root.
fn write_owned(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(contents.as_bytes())?;
    pg::chown_to_server(path)
}

/// Runs `pgbouncer INI` in the foreground, as the `postgres` user when we are root.
fn spawn(pgbouncer: &Path, ini: &Path, root: &Path) -> io::Result<Child> {
    let mut cmd = Command::new(pgbouncer);
    cmd.arg(ini)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C")
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if pg::is_root() {
        let (uid, gid) = pg::postgres_ids().ok_or_else(|| {
            io::Error::other("running as root but there is no 'postgres' user to run pgbouncer")
        })?;
        cmd.uid(uid).gid(gid);
    }
    cmd.spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {}: {e}", pgbouncer.display())))
}

/// Waits until pgbouncer accepts on `port`; on failure kills it and returns the error and
/// the log.
fn wait_until_accepting(
    mut child: Child,
    port: u16,
    log_file: &Path,
) -> Result<Child, (io::Error, String)> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        let exited = match child.try_wait() {
            Ok(status) => status.map(|s| format!("pgbouncer exited ({s})")),
            Err(e) => Some(format!("pgbouncer: {e}")),
        };
        let why = match exited {
            Some(why) => why,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                format!("pgbouncer did not accept connections within {START_TIMEOUT:?}")
            }
            None => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let log = read_log(log_file);
        let err = io::Error::other(format!(
            "{why}\n--- pgbouncer log {} ---\n{}",
            log_file.display(),
            pg::tail(&log, 30)
        ));
        return Err((err, log));
    }
}

fn read_log(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Stops pgbouncers and removes directories left by test processes that no longer exist.
fn cleanup_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let dir = entry.path();
            let read_pid = |name: &str| {
                fs::read_to_string(dir.join(name))
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
            };
            let Some(owner) = read_pid(OWNER_FILE) else {
                continue;
            };
            if pg::pid_alive(owner) {
                continue;
            }
            if let Some(pid) = read_pid(CHILD_FILE) {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "pgbouncer" {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
            let _ = fs::remove_dir_all(&dir);
            eprintln!(
                "pgbouncer harness: removed {} left by dead process {owner}",
                dir.display()
            );
        }
    });
}
