//! A minimal PostgreSQL startup for tests and examples: StartupMessage, authentication
//! (trust, cert, cleartext, MD5, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS with libpq's
//! `channel_binding` rules) up to ReadyForQuery, plus a simple query.
//!
//! This is the driver's job, not pgtls's: it lives here so `pgtls probe` and pgtls's
//! real-server tests (through this crate's library) can reach ReadyForQuery.

use std::io::{self, Read, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBindingMode {
    /// Never use channel binding.
    Disable,
    /// Use it when TLS is up and the server offers SCRAM-SHA-256-PLUS (the default).
    Prefer,
    /// Fail unless the server authenticates with SCRAM-SHA-256-PLUS.
    Require,
}

impl std::str::FromStr for ChannelBindingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            other => Err(format!("invalid channel_binding value: \"{other}\"")),
        }
    }
}

/// What the startup needs from the connection settings.
#[derive(Debug, Clone)]
pub struct StartupParams {
    /// `user`.
    pub user: String,
    /// `dbname`.
    pub database: String,
    /// `password`, if any.
    pub password: Option<String>,
    /// `application_name`, if any.
    pub application_name: Option<String>,
    /// `channel_binding`.
    pub channel_binding: ChannelBindingMode,
}

/// How the startup ended badly.
#[derive(Debug)]
pub enum StartupFailure {
    /// An ErrorResponse before AuthenticationOk: libpq may retry with another
    /// encryption method (allow/prefer).
    Rejected {
        /// SQLSTATE.
        sqlstate: Option<String>,
        /// `SEVERITY:  message` as libpq prints it.
        message: String,
    },
    /// A failure libpq never retries (client-side auth rules, errors after
    /// AuthenticationOk, protocol violations).
    Fatal(String),
    /// The transport failed.
    Io(io::Error),
}

impl From<io::Error> for StartupFailure {
    fn from(err: io::Error) -> Self {
        StartupFailure::Io(err)
    }
}

/// What the connection plan makes of a failed startup: a rejection may be retried under
/// another encryption method (allow/prefer), the rest end the attempt.
impl From<StartupFailure> for pgtls::setup::StartupError {
    fn from(failure: StartupFailure) -> Self {
        match failure {
            StartupFailure::Rejected { sqlstate, message } => {
                pgtls::setup::StartupError::Rejected { sqlstate, message }
            }
            StartupFailure::Fatal(msg) => pgtls::setup::StartupError::Fatal(msg.into()),
            StartupFailure::Io(err) => pgtls::setup::StartupError::Io(err),
        }
    }
}

impl std::fmt::Display for StartupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupFailure::Rejected { message, .. } => f.write_str(message),
            StartupFailure::Fatal(msg) => f.write_str(msg),
            StartupFailure::Io(err) => write!(f, "{err}"),
        }
    }
}

/// What the startup learned.
#[derive(Debug, Clone, Default)]
pub struct StartupReport {
    /// The authentication method the server asked for (`trust`, `cleartext`, `md5`,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`).
    pub auth: String,
    /// Whether SCRAM used channel binding.
    pub channel_bound: bool,
    /// ParameterStatus values.
    pub parameters: Vec<(String, String)>,
    /// BackendKeyData: process id and secret key.
    pub backend_key: Option<(u32, Vec<u8>)>,
}

/// TLS facts the startup needs.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    /// Whether TLS is in use.
    pub tls: bool,
    /// The tls-server-end-point data, when available.
    pub channel_binding: Option<Vec<u8>>,
}

/// A protocol 3.0 StartupMessage.
pub fn startup_message(params: &StartupParams) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    let mut pairs = vec![
        ("user", params.user.as_str()),
        ("database", params.database.as_str()),
    ];
    if let Some(app) = &params.application_name {
        pairs.push(("application_name", app));
    }
    for (k, v) in pairs {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// Reads one backend message (type, body). Bodies over 1 MiB are refused.
pub fn read_message<S: Read>(stream: &mut S) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=1 << 20).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("invalid message length {len}"),
        ));
    }
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body)?;
    Ok((header[0], body))
}

fn frontend_message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![tag];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}

/// The fields of an ErrorResponse / NoticeResponse.
pub fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut fields = Vec::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        fields.push((code, String::from_utf8_lossy(&tail[..end]).into_owned()));
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    fields
}

/// `SEVERITY:  message` (libpq's layout) and the SQLSTATE of an ErrorResponse.
pub fn describe_error(body: &[u8]) -> (Option<String>, String) {
    let fields = error_fields(body);
    let get = |c: u8| fields.iter().find(|(k, _)| *k == c).map(|(_, v)| v.clone());
    let severity = get(b'V')
        .or_else(|| get(b'S'))
        .unwrap_or_else(|| "ERROR".into());
    (
        get(b'C'),
        format!("{severity}:  {}", get(b'M').unwrap_or_default()),
    )
}

/// Runs the startup to ReadyForQuery.
pub fn run_startup<S: Read + Write>(
    stream: &mut S,
    params: &StartupParams,
    tls: &TlsFacts,
) -> Result<StartupReport, StartupFailure> {
    stream.write_all(&startup_message(params))?;
    stream.flush()?;
    let mut report = StartupReport::default();
    let mut scram: Option<Scram> = None;
    let mut authenticated = false;
    loop {
        let (tag, body) = read_message(stream)?;
        match tag {
            b'E' => {
                let (sqlstate, message) = describe_error(&body);
                return Err(if authenticated {
                    StartupFailure::Fatal(message)
                } else {
                    StartupFailure::Rejected { sqlstate, message }
                });
            }
            b'R' => {
                let code = body
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| {
                        StartupFailure::Fatal("invalid authentication request".into())
                    })?;
                check_channel_binding_rule(params, code, scram.as_ref())?;
                match code {
                    0 => {
                        authenticated = true;
                        if report.auth.is_empty() {
                            report.auth = "trust".into();
                        }
                    }
                    3 => {
                        report.auth = "cleartext".into();
                        let password = password(params)?;
                        let mut pw = password.as_bytes().to_vec();
                        pw.push(0);
                        stream.write_all(&frontend_message(b'p', &pw))?;
                        stream.flush()?;
                    }
                    5 => {
                        report.auth = "md5".into();
                        let salt = body.get(4..8).ok_or_else(|| {
                            StartupFailure::Fatal("invalid MD5 authentication request".into())
                        })?;
                        let password = password(params)?;
                        let inner = hex(&Md5::digest(
                            [password.as_bytes(), params.user.as_bytes()].concat(),
                        ));
                        let outer = hex(&Md5::digest([inner.as_bytes(), salt].concat()));
                        let mut msg = format!("md5{outer}").into_bytes();
                        msg.push(0);
                        stream.write_all(&frontend_message(b'p', &msg))?;
                        stream.flush()?;
                    }
                    10 => {
                        let mechanisms = parse_mechanisms(&body[4..]);
                        let state = Scram::start(params, tls, &mechanisms)?;
                        // libpq's pg_SASL_init wants the password before the first message.
                        password(params)?;
                        report.auth = state.mechanism.to_string();
                        report.channel_bound = state.channel_bound();
                        stream.write_all(&state.initial_response())?;
                        stream.flush()?;
                        scram = Some(state);
                    }
                    11 => {
                        let state = scram.as_mut().ok_or_else(|| {
                            StartupFailure::Fatal("unexpected SASL continuation".into())
                        })?;
                        let password = password(params)?;
                        let reply = state.handle_server_first(&body[4..], &password)?;
                        stream.write_all(&frontend_message(b'p', &reply))?;
                        stream.flush()?;
                    }
                    12 => {
                        let state = scram.as_ref().ok_or_else(|| {
                            StartupFailure::Fatal("unexpected SASL final message".into())
                        })?;
                        state.handle_server_final(&body[4..])?;
                    }
                    other => {
                        return Err(StartupFailure::Fatal(format!(
                            "authentication method {other} not supported"
                        )))
                    }
                }
            }
            b'S' => {
                let fields = error_fields_nul(&body);
                if let [k, v] = fields.as_slice() {
                    report.parameters.push((k.clone(), v.clone()));
                }
            }
            b'K' => {
                if body.len() >= 8 {
                    let pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    report.backend_key = Some((pid, body[4..].to_vec()));
                }
            }
            b'Z' => return Ok(report),
            b'N' | b'v' => {}
            other => {
                return Err(StartupFailure::Fatal(format!(
                    "unexpected message type 0x{other:02x} during startup"
                )))
            }
        }
    }
}

/// libpq's `check_expected_areq` for `channel_binding=require`.
fn check_channel_binding_rule(
    params: &StartupParams,
    code: u32,
    scram: Option<&Scram>,
) -> Result<(), StartupFailure> {
    if params.channel_binding != ChannelBindingMode::Require {
        return Ok(());
    }
    match code {
        10..=12 => Ok(()),
        0 if scram.is_some_and(|s| s.channel_bound()) => Ok(()),
        0 => Err(StartupFailure::Fatal(
            "channel binding required, but server authenticated client without channel binding"
                .into(),
        )),
        _ => Err(StartupFailure::Fatal(
            "channel binding required but not supported by server's authentication request".into(),
        )),
    }
}

fn password(params: &StartupParams) -> Result<String, StartupFailure> {
    params
        .password
        .clone()
        .ok_or_else(|| StartupFailure::Fatal("fe_sendauth: no password supplied".into()))
}

fn error_fields_nul(body: &[u8]) -> Vec<String> {
    body.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn parse_mechanisms(body: &[u8]) -> Vec<String> {
    error_fields_nul(body)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The client side of SCRAM-SHA-256(-PLUS), RFC 5802 / 7677, as libpq runs it.
struct Scram {
    mechanism: &'static str,
    gs2_header: String,
    /// `None`: SCRAM-SHA-256-PLUS was chosen but the binding data could not be computed.
    cbind_data: Option<Vec<u8>>,
    client_nonce: String,
    client_first_bare: String,
    auth_message: String,
    salted_password: [u8; 32],
}

impl Scram {
    /// libpq's `pg_SASL_init` choice of mechanism.
    fn start(
        params: &StartupParams,
        tls: &TlsFacts,
        mechanisms: &[String],
    ) -> Result<Scram, StartupFailure> {
        let offers_plus = mechanisms.iter().any(|m| m == "SCRAM-SHA-256-PLUS");
        let offers_plain = mechanisms.iter().any(|m| m == "SCRAM-SHA-256");
        if params.channel_binding == ChannelBindingMode::Require && !tls.tls {
            return Err(StartupFailure::Fatal(
                "channel binding required, but SSL not in use".into(),
            ));
        }
        if offers_plus && !tls.tls {
            return Err(StartupFailure::Fatal(
                "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection".into(),
            ));
        }
        // libpq picks SCRAM-SHA-256-PLUS whenever TLS is up and channel_binding is not
        // disable, before it knows whether the binding data can be computed (it cannot
        // for Ed25519/Ed448 certificates: the exchange then fails, see handle_server_first).
        let use_plus =
            offers_plus && tls.tls && params.channel_binding != ChannelBindingMode::Disable;
        if params.channel_binding == ChannelBindingMode::Require && !use_plus {
            return Err(StartupFailure::Fatal(
                "channel binding is required, but server did not offer an authentication method that supports channel binding".into(),
            ));
        }
        if !use_plus && !offers_plain {
            return Err(StartupFailure::Fatal(
                "none of the server's SASL authentication mechanisms are supported".into(),
            ));
        }
        let (mechanism, gs2_header, cbind_data) = if use_plus {
            (
                "SCRAM-SHA-256-PLUS",
                "p=tls-server-end-point,,".to_string(),
                tls.channel_binding.clone(),
            )
        } else if tls.tls && params.channel_binding != ChannelBindingMode::Disable {
            // Client supports binding, thinks the server does not.
            ("SCRAM-SHA-256", "y,,".to_string(), Some(Vec::new()))
        } else {
            ("SCRAM-SHA-256", "n,,".to_string(), Some(Vec::new()))
        };
        let mut nonce_bytes = [0u8; 18];
        pgtls::rustls::crypto::aws_lc_rs::default_provider()
            .secure_random
            .fill(&mut nonce_bytes)
            .map_err(|_| StartupFailure::Fatal("could not generate nonce".into()))?;
        let client_nonce = B64.encode(nonce_bytes);
        let client_first_bare = format!("n=,r={client_nonce}");
        Ok(Scram {
            mechanism,
            gs2_header,
            cbind_data,
            client_nonce,
            client_first_bare,
            auth_message: String::new(),
            salted_password: [0; 32],
        })
    }

    fn channel_bound(&self) -> bool {
        self.mechanism == "SCRAM-SHA-256-PLUS"
    }

    /// SASLInitialResponse.
    fn initial_response(&self) -> Vec<u8> {
        let first = format!("{}{}", self.gs2_header, self.client_first_bare);
        let mut body = self.mechanism.as_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(&(first.len() as u32).to_be_bytes());
        body.extend_from_slice(first.as_bytes());
        frontend_message(b'p', &body)
    }

    fn handle_server_first(
        &mut self,
        server_first: &[u8],
        password: &str,
    ) -> Result<Vec<u8>, StartupFailure> {
        let bad = |what: &str| StartupFailure::Fatal(format!("malformed SCRAM message ({what})"));
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| bad("not UTF-8"))?
            .to_string();
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v.to_string()),
                Some(("s", v)) => salt = Some(B64.decode(v).map_err(|_| bad("salt"))?),
                Some(("i", v)) => {
                    iterations = Some(v.parse::<u32>().map_err(|_| bad("iterations"))?)
                }
                _ => {}
            }
        }
        let (nonce, salt, iterations) = (
            nonce.ok_or_else(|| bad("nonce"))?,
            salt.ok_or_else(|| bad("salt"))?,
            iterations.ok_or_else(|| bad("iterations"))?,
        );
        if !nonce.starts_with(&self.client_nonce) || iterations == 0 || iterations > 10_000_000 {
            return Err(bad("nonce or iteration count"));
        }
        pbkdf2::pbkdf2::<HmacSha256>(
            password.as_bytes(),
            &salt,
            iterations,
            &mut self.salted_password,
        )
        .map_err(|_| bad("pbkdf2"))?;
        // libpq computes the certificate hash here (build_client_final_message) and fails
        // the connection when it cannot ("could not find digest for NID ...").
        let cbind_data = self.cbind_data.as_deref().ok_or_else(|| {
            StartupFailure::Fatal(
                "could not compute the tls-server-end-point channel binding data for the server certificate".into(),
            )
        })?;
        let cbind_input = [self.gs2_header.as_bytes(), cbind_data].concat();
        let without_proof = format!("c={},r={nonce}", B64.encode(cbind_input));
        self.auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_key = hmac(&self.salted_password, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let signature = hmac(&stored_key, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    fn handle_server_final(&self, server_final: &[u8]) -> Result<(), StartupFailure> {
        let text = String::from_utf8_lossy(server_final);
        let verifier = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| StartupFailure::Fatal("malformed SCRAM final message".into()))?;
        let server_key = hmac(&self.salted_password, b"Server Key");
        let expected = hmac(&server_key, self.auth_message.as_bytes());
        if verifier != expected {
            return Err(StartupFailure::Fatal("incorrect server signature".into()));
        }
        Ok(())
    }
}

/// Runs a simple query and returns the rows as text (NULL as `None`).
pub fn simple_query<S: Read + Write>(
    stream: &mut S,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, StartupFailure> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    stream.write_all(&frontend_message(b'Q', &body))?;
    stream.flush()?;
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        let (tag, body) = read_message(stream)?;
        match tag {
            b'D' => rows.push(parse_data_row(&body)),
            b'E' => error = Some(describe_error(&body).1),
            b'Z' => {
                return match error {
                    Some(e) => Err(StartupFailure::Fatal(e)),
                    None => Ok(rows),
                }
            }
            _ => {}
        }
    }
}

fn parse_data_row(body: &[u8]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    if body.len() < 2 {
        return out;
    }
    let count = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut pos = 2;
    for _ in 0..count {
        let Some(len_bytes) = body.get(pos..pos + 4) else {
            break;
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        pos += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let Some(value) = body.get(pos..pos + len as usize) else {
            break;
        };
        out.push(Some(String::from_utf8_lossy(value).into_owned()));
        pos += len as usize;
    }
    out
}

/// Sends Terminate.
pub fn terminate<S: Write>(stream: &mut S) -> io::Result<()> {
    stream.write_all(&frontend_message(b'X', &[]))?;
    stream.flush()
}

#[cfg(all(test, unix))]
mod tests {
    //! The startup against a scripted server on the other end of a socket pair: the
    //! message layouts, trust, SCRAM-SHA-256 (checked by a server-side implementation of
    //! RFC 5802 written here), a wrong server signature, a rejected password, and
    //! libpq's `channel_binding=require` rule.

    use std::os::unix::net::UnixStream;
    use std::thread;

    use super::*;

    const PASSWORD: &str = "correct horse";
    const SALT: &[u8] = b"pgtls-test-salt!";
    const ITERATIONS: u32 = 4096;

    fn params(password: Option<&str>, channel_binding: ChannelBindingMode) -> StartupParams {
        StartupParams {
            user: "alice".into(),
            database: "shop".into(),
            password: password.map(str::to_owned),
            application_name: Some("pgtls-test".into()),
            channel_binding,
        }
    }

    fn backend(tag: u8, body: &[u8]) -> Vec<u8> {
        frontend_message(tag, body)
    }

    fn auth(code: u32, data: &[u8]) -> Vec<u8> {
        backend(b'R', &[&code.to_be_bytes()[..], data].concat())
    }

    fn ready() -> Vec<u8> {
        [
            backend(b'S', b"server_version\x0015.0\x00"),
            backend(b'K', &[0, 0, 0, 42, 1, 2, 3, 4]),
            backend(b'Z', b"I"),
        ]
        .concat()
    }

    fn error(sqlstate: &str, message: &str) -> Vec<u8> {
        let body = format!("SFATAL\0VFATAL\0C{sqlstate}\0M{message}\0\0");
        backend(b'E', body.as_bytes())
    }

    /// Reads the StartupMessage (no type byte) from the client.
    fn read_startup(server: &mut UnixStream) -> Vec<u8> {
        let mut len = [0u8; 4];
        server.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        server.read_exact(&mut body).unwrap();
        body
    }

    /// Runs the client's startup against `server_side`, which gets the server's socket.
    fn run_against(
        params: &StartupParams,
        server_side: impl FnOnce(&mut UnixStream) + Send + 'static,
    ) -> Result<StartupReport, StartupFailure> {
        let (mut client, mut server) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || server_side(&mut server));
        let result = run_startup(&mut client, params, &TlsFacts::default());
        drop(client);
        server.join().unwrap();
        result
    }

    /// The server side of SCRAM-SHA-256 without channel binding; `tamper` spoils the
    /// server signature.
    fn scram_server(server: &mut UnixStream, tamper: bool) {
        read_startup(server);
        server
            .write_all(&auth(10, b"SCRAM-SHA-256\x00\x00"))
            .unwrap();
        let (tag, body) = read_message(server).unwrap();
        assert_eq!(tag, b'p');
        let mechanism_end = body.iter().position(|&b| b == 0).unwrap();
        assert_eq!(&body[..mechanism_end], b"SCRAM-SHA-256");
        let client_first = String::from_utf8(body[mechanism_end + 5..].to_vec()).unwrap();
        let client_first_bare = client_first.strip_prefix("n,,").unwrap().to_owned();
        let client_nonce = client_first_bare.strip_prefix("n=,r=").unwrap().to_owned();
        let server_first = format!(
            "r={client_nonce}server-nonce,s={},i={ITERATIONS}",
            B64.encode(SALT)
        );
        server
            .write_all(&auth(11, server_first.as_bytes()))
            .unwrap();
        let (tag, body) = read_message(server).unwrap();
        assert_eq!(tag, b'p');
        let client_final = String::from_utf8(body).unwrap();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        assert!(without_proof.starts_with("c=biws,r="), "{without_proof}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2::<HmacSha256>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut salted).unwrap();
        let stored_key: [u8; 32] = Sha256::digest(hmac(&salted, b"Client Key")).into();
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = B64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let proof_ok = <[u8; 32]>::from(Sha256::digest(&client_key)) == stored_key;
        if !proof_ok {
            let failed = "password authentication failed for user \"alice\"";
            server.write_all(&error("28P01", failed)).unwrap();
            return;
        }
        let mut server_signature = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
        if tamper {
            server_signature[0] ^= 1;
        }
        let server_final = format!("v={}", B64.encode(server_signature));
        server
            .write_all(&[auth(12, server_final.as_bytes()), auth(0, b""), ready()].concat())
            .unwrap();
    }

    #[test]
    fn the_startup_message_is_protocol_3_with_its_parameters() {
        let msg = startup_message(&params(None, ChannelBindingMode::Prefer));
        assert_eq!(
            u32::from_be_bytes(msg[..4].try_into().unwrap()) as usize,
            msg.len()
        );
        assert_eq!(msg[4..8], [0, 3, 0, 0]);
        assert_eq!(
            &msg[8..],
            b"user\0alice\0database\0shop\0application_name\0pgtls-test\0\0"
        );
    }

    #[test]
    fn error_responses_read_as_libpq_prints_them() {
        let body = b"SERROR\0VFATAL\0C28000\0Mno pg_hba.conf entry\0\0";
        assert_eq!(
            describe_error(body),
            (
                Some("28000".to_owned()),
                "FATAL:  no pg_hba.conf entry".to_owned()
            )
        );
        // A truncated body yields what it holds, no panic.
        assert_eq!(error_fields(b"SERROR"), vec![(b'S', "ERROR".to_owned())]);
    }

    #[test]
    fn trust_reaches_ready_for_query_with_the_server_parameters() {
        let report = run_against(&params(None, ChannelBindingMode::Prefer), |server| {
            read_startup(server);
            server.write_all(&[auth(0, b""), ready()].concat()).unwrap();
        })
        .unwrap();
        assert_eq!(report.auth, "trust");
        assert_eq!(
            report.parameters,
            vec![("server_version".to_owned(), "15.0".to_owned())]
        );
        assert_eq!(report.backend_key, Some((42, vec![1, 2, 3, 4])));
    }

    #[test]
    fn scram_sha_256_proves_the_password_and_checks_the_server() {
        let report = run_against(
            &params(Some(PASSWORD), ChannelBindingMode::Prefer),
            |server| scram_server(server, false),
        )
        .unwrap();
        assert_eq!(report.auth, "SCRAM-SHA-256");
        assert!(!report.channel_bound);
    }

    #[test]
    fn scram_with_a_wrong_password_is_rejected_by_the_server() {
        let err = run_against(
            &params(Some("wrong"), ChannelBindingMode::Prefer),
            |server| scram_server(server, false),
        )
        .unwrap_err();
        match err {
            StartupFailure::Rejected { sqlstate, message } => {
                assert_eq!(sqlstate.as_deref(), Some("28P01"));
                assert_eq!(
                    message,
                    "FATAL:  password authentication failed for user \"alice\""
                );
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn scram_refuses_a_wrong_server_signature() {
        let err = run_against(
            &params(Some(PASSWORD), ChannelBindingMode::Prefer),
            |server| scram_server(server, true),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "incorrect server signature");
    }

    #[test]
    fn scram_without_a_password_fails_like_libpq() {
        let err = run_against(&params(None, ChannelBindingMode::Prefer), |server| {
            read_startup(server);
            server
                .write_all(&auth(10, b"SCRAM-SHA-256\x00\x00"))
                .unwrap();
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "fe_sendauth: no password supplied");
    }

    #[test]
    fn channel_binding_require_refuses_trust_and_plaintext_scram() {
        let err = run_against(&params(None, ChannelBindingMode::Require), |server| {
            read_startup(server);
            server.write_all(&[auth(0, b""), ready()].concat()).unwrap();
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "channel binding required, but server authenticated client without channel binding"
        );
        let err = run_against(
            &params(Some(PASSWORD), ChannelBindingMode::Require),
            |server| {
                read_startup(server);
                server
                    .write_all(&auth(10, b"SCRAM-SHA-256\x00\x00"))
                    .unwrap();
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "channel binding required, but SSL not in use"
        );
    }
}
