//! Connection service files (`pg_service.conf`): libpq's `parseServiceInfo` and
//! `parseServiceFile` in `fe-connect.c`.
//!
//! A service file is a list of `[name]` groups, each followed by `keyword=value` lines:
//!
//! ```text
//! # comments and blank lines are ignored
//! [mydb]
//! host=db.example.com
//! sslmode=verify-full
//! ```
//!
//! The service named by `service` (or `PGSERVICE`) is looked up in `PGSERVICEFILE` (or
//! `~/.pg_service.conf` when that exists), then, when not found there, in
//! `PGSYSCONFDIR/pg_service.conf` (or the compiled-in directory). Its settings fill what
//! the connection string left unset; the environment fills what is still unset after
//! that.

use std::path::Path;

use super::conninfo::{ConnParams, KEYWORDS};
use super::env::Environment;
use super::error::SettingsError;

/// libpq reads service files with `fgets` into a 1024-byte buffer: a line (with its
/// newline) of this many bytes or more is "too long".
const LINE_LIMIT: usize = 1023;

/// What one service file said about the wanted service.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileResult {
    /// The group was found (its settings were applied).
    Found,
    /// The file has no such group.
    NotFound,
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Splits `text` as repeated `fgets(buf, 1024, f)` calls would: pieces of at most
/// [`LINE_LIMIT`] bytes, each ending after a newline when one comes first. Each piece is
/// cut at its first NUL byte, as C's string functions see it.
fn fgets_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let limit = rest.len().min(LINE_LIMIT);
        let end = rest[..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(limit, |at| at + 1);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        let visible = piece.iter().position(|&b| b == 0).unwrap_or(piece.len());
        Some(&piece[..visible])
    })
}

fn trim_c_space(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|&b| !is_c_space(b))
        .map_or(start, |at| at + 1);
    &line[start..end.max(start)]
}

/// Whether a `[...]` line opens `service`'s group. libpq compares the name and then the
/// character after it, so `[name]` followed by anything still counts.
fn opens_group(line: &[u8], service: &str) -> bool {
    let name = service.as_bytes();
    line.get(1..=name.len()) == Some(name) && line.get(name.len() + 1) == Some(&b']')
}

/// Reads the settings of `service` from the file's `text` into `params`, leaving values
/// that are already set alone.
pub(crate) fn apply_file_text(
    text: &[u8],
    file_name: &str,
    service: &str,
    params: &mut ConnParams,
) -> Result<FileResult, SettingsError> {
    let mut in_group = false;
    for (index, raw) in fgets_lines(text).enumerate() {
        let line_number = index + 1;
        if raw.len() >= LINE_LIMIT {
            return Err(SettingsError::ServiceFileLineTooLong {
                path: file_name.to_owned(),
                line: line_number,
            });
        }
        let line = trim_c_space(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if line[0] == b'[' {
            if in_group {
                // The next group starts: the wanted one is complete.
                return Ok(FileResult::Found);
            }
            in_group = opens_group(line, service);
            continue;
        }
        if !in_group {
            continue;
        }
        let syntax_error = || SettingsError::ServiceFileSyntax {
            path: file_name.to_owned(),
            line: line_number,
        };
        let Some(equals) = line.iter().position(|&b| b == b'=') else {
            return Err(syntax_error());
        };
        let (key, value) = (&line[..equals], &line[equals + 1..]);
        if key == b"service" {
            return Err(SettingsError::ServiceFileNestedService {
                path: file_name.to_owned(),
                line: line_number,
            });
        }
        let Some(index) = KEYWORDS.iter().position(|k| k.name.as_bytes() == key) else {
            return Err(syntax_error());
        };
        if params.get_index(index).is_none() {
            params.set_index(index, String::from_utf8_lossy(value).into_owned());
        }
    }
    Ok(if in_group {
        FileResult::Found
    } else {
        FileResult::NotFound
    })
}

/// Reads one service file; a file that cannot be opened is libpq's
/// `service file "<path>" not found`.
fn apply_file(
    path: &str,
    service: &str,
    params: &mut ConnParams,
) -> Result<FileResult, SettingsError> {
    let text = std::fs::read(path).map_err(|_| SettingsError::ServiceFileNotFound {
        path: path.to_owned(),
    })?;
    apply_file_text(&text, path, service, params)
}

/// Fills `params` from the service named by `service` or `PGSERVICE`, if any, with
/// libpq's search order and messages. Values already in `params` (from the connection
/// string) are kept.
pub(crate) fn apply_service(
    params: &mut ConnParams,
    env: &Environment,
) -> Result<(), SettingsError> {
    let Some(service) = params
        .get("service")
        .map(str::to_owned)
        .or_else(|| env.var("PGSERVICE"))
    else {
        return Ok(());
    };

    // The user's file: PGSERVICEFILE (which must then exist), else ~/.pg_service.conf
    // when there is one.
    let user_file = match env.var("PGSERVICEFILE") {
        Some(path) => Some(path),
        None => env
            .home()
            .map(|home| format!("{}/.pg_service.conf", home.display()))
            .filter(|path| Path::new(path).metadata().is_ok()),
    };
    if let Some(path) = user_file {
        if apply_file(&path, &service, params)? == FileResult::Found {
            return Ok(());
        }
    }

    // Then the system-wide file, when it exists.
    if let Some(dir) = env.sysconfdir() {
        let system_file = format!("{}/pg_service.conf", dir.display());
        if Path::new(&system_file).metadata().is_ok()
            && apply_file(&system_file, &service, params)? == FileResult::Found
        {
            return Ok(());
        }
    }
    Err(SettingsError::ServiceNotFound { service })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, service: &str) -> Result<(FileResult, ConnParams), String> {
        let mut params = ConnParams::parse("host=given").unwrap();
        apply_file_text(text.as_bytes(), "/f", service, &mut params)
            .map(|found| (found, params))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_named_group_fills_unset_values() {
        let text = "# comment\n\n[other]\nport=1\n  [mydb]  \n\thost=svc\nport=6000 \nsslmode=verify-full\n[next]\nuser=no\n";
        let (found, params) = apply(text, "mydb").unwrap();
        assert_eq!(found, FileResult::Found);
        assert_eq!(params.get("host"), Some("given"));
        assert_eq!(params.get("port"), Some("6000"));
        assert_eq!(params.get("sslmode"), Some("verify-full"));
        assert_eq!(params.get("user"), None);
        // The group may end the file, and values keep inner spaces and quotes.
        let (found, params) = apply("[a]\noptions='-c x=1' y\n", "a").unwrap();
        assert_eq!(found, FileResult::Found);
        assert_eq!(params.get("options"), Some("'-c x=1' y"));
        let (found, _) = apply("[a]\nport=1\n", "b").unwrap();
        assert_eq!(found, FileResult::NotFound);
    }

    #[test]
    fn group_names_match_as_libpq_compares_them() {
        assert!(opens_group(b"[db]", "db"));
        assert!(opens_group(b"[db] trailing", "db"));
        assert!(!opens_group(b"[db2]", "db"));
        assert!(!opens_group(b"[d]", "db"));
        assert!(!opens_group(b"[db", "db"));
        assert!(opens_group(b"[]", ""));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        assert_eq!(
            apply("[a]\nport=1\nnot a setting\n", "a").unwrap_err(),
            "syntax error in service file \"/f\", line 3"
        );
        assert_eq!(
            apply("[a]\nbogus=1\n", "a").unwrap_err(),
            "syntax error in service file \"/f\", line 2"
        );
        // Spaces around '=' are part of the keyword.
        assert_eq!(
            apply("[a]\nhost = x\n", "a").unwrap_err(),
            "syntax error in service file \"/f\", line 2"
        );
        assert_eq!(
            apply("\n[a]\nservice=b\n", "a").unwrap_err(),
            "nested service specifications not supported in service file \"/f\", line 3"
        );
        // Lines outside the wanted group are not checked.
        assert!(apply("[b]\nnonsense\n[a]\nport=1\n", "a").is_ok());
    }

    #[test]
    fn long_lines_as_fgets_sees_them() {
        let ok = format!("[a]\nhost={}\n", "h".repeat(LINE_LIMIT - 7));
        assert!(apply(&ok, "a").is_ok());
        let long = format!("[a]\nhost={}\n", "h".repeat(LINE_LIMIT - 6));
        assert_eq!(
            apply(&long, "a").unwrap_err(),
            "line 2 too long in service file \"/f\""
        );
        // Checked in every group, before anything else.
        let long = format!("# {}\n[a]\n", "x".repeat(2000));
        assert_eq!(
            apply(&long, "a").unwrap_err(),
            "line 1 too long in service file \"/f\""
        );
    }

    #[test]
    fn fgets_pieces() {
        let pieces: Vec<&[u8]> = fgets_lines(b"a\nbc\n\nd").collect();
        assert_eq!(pieces, vec![&b"a\n"[..], b"bc\n", b"\n", b"d"]);
        let pieces: Vec<&[u8]> = fgets_lines(b"a\0b\nc").collect();
        assert_eq!(pieces, vec![&b"a"[..], b"c"]);
        let long = vec![b'x'; LINE_LIMIT + 1];
        assert_eq!(fgets_lines(&long).count(), 2);
    }

    #[test]
    fn search_order_and_messages() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::write(home.join(".pg_service.conf"), "[u]\nport=1\n").unwrap();
        std::fs::write(sys.join("pg_service.conf"), "[u]\nport=2\n[s]\nport=3\n").unwrap();
        let env = |vars: &[(&str, &str)]| {
            Environment::from_vars(vars.iter().copied())
                .with_home(Some(home.clone()))
                .with_sysconfdir(&sys)
        };
        let port = |conninfo: &str, vars: &[(&str, &str)]| {
            let mut params = ConnParams::parse(conninfo).unwrap();
            apply_service(&mut params, &env(vars))
                .map(|()| params.get("port").map(str::to_owned))
                .map_err(|e| e.to_string())
        };
        assert_eq!(port("service=u", &[]), Ok(Some("1".into())));
        assert_eq!(port("service=s", &[]), Ok(Some("3".into())));
        assert_eq!(port("", &[("PGSERVICE", "s")]), Ok(Some("3".into())));
        assert_eq!(
            port("service=u", &[("PGSERVICE", "s")]),
            Ok(Some("1".into()))
        );
        assert_eq!(port("", &[]), Ok(None));
        assert_eq!(
            port("service=nosuch", &[]),
            Err("definition of service \"nosuch\" not found".into())
        );
        let missing = dir.path().join("missing.conf").display().to_string();
        assert_eq!(
            port("service=u", &[("PGSERVICEFILE", &missing)]),
            Err(format!("service file \"{missing}\" not found"))
        );
        // A PGSERVICEFILE without the group falls through to the system file.
        let other = dir.path().join("other.conf");
        std::fs::write(&other, "[x]\nport=9\n").unwrap();
        let other = other.display().to_string();
        assert_eq!(
            port("service=u", &[("PGSERVICEFILE", &other)]),
            Ok(Some("2".into()))
        );
        // PGSYSCONFDIR beats the compiled-in directory; a missing system file is skipped.
        assert_eq!(
            port("service=s", &[("PGSYSCONFDIR", "/nonexistent")]),
            Err("definition of service \"s\" not found".into())
        );
    }
}
