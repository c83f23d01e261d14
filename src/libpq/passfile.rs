//! The password file (`~/.pgpass`, `passfile`, `PGPASSFILE`): libpq's
//! `passwordFromFile` and `pwdfMatchesString` in `fe-connect.c`.
//!
//! Each line is `hostname:port:database:username:password`. A field that is exactly
//! `*` matches anything; `\` makes the next character literal (so `\:` and `\\` stand
//! for `:` and `\`). Lines starting with `#` are comments. The first matching line wins.
//! On Unix the file is ignored, with a warning, unless it is a plain file without group
//! or world permissions.

use std::fmt;
use std::fs::File;
use std::io::Read as _;

/// What looking a host up in the password file gave.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordFileLookup {
    /// The password of the first matching line.
    Found(String),
    /// No line matched, the file could not be opened, or there is no file to read.
    NotFound,
    /// The file was not used: libpq's warning, which libpq prints on standard error
    /// (`WARNING: password file "<path>" has group or world access; permissions should
    /// be u=rw (0600) or less`, or `... is not a plain file`).
    Refused(String),
}

impl fmt::Debug for PasswordFileLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordFileLookup::Found(_) => f.write_str("Found(<hidden>)"),
            PasswordFileLookup::NotFound => f.write_str("NotFound"),
            PasswordFileLookup::Refused(warning) => {
                f.debug_tuple("Refused").field(warning).finish()
            }
        }
    }
}

impl PasswordFileLookup {
    /// The password, when one was found.
    pub fn password(&self) -> Option<&str> {
        match self {
            PasswordFileLookup::Found(password) => Some(password),
            _ => None,
        }
    }
}

/// The key one host is looked up with.
pub(crate) struct LookupKey<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: &'a str,
    pub(crate) dbname: &'a str,
    pub(crate) user: &'a str,
}

/// If `field` (the rest of a line) starts with a field matching `token`, what follows
/// that field's `:`.
fn match_field<'a>(field: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if let Some(rest) = field.strip_prefix(b"*:") {
        return Some(rest);
    }
    let mut at = 0;
    let mut wanted = token.iter();
    loop {
        let mut escaped = false;
        let mut byte = *field.get(at)?;
        if byte == b'\\' {
            escaped = true;
            at += 1;
            byte = *field.get(at)?;
        }
        match wanted.next() {
            None if byte == b':' && !escaped => return Some(&field[at + 1..]),
            Some(&expected) if expected == byte => at += 1,
            _ => return None,
        }
    }
}

/// The password field with its escapes removed, up to the first unescaped `:`.
fn unescape_password(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b':' => break,
            b'\\' => out.push(bytes.next().unwrap_or(b'\\')),
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password of the first line of `text` matching `key`, if any.
pub(crate) fn find_password(text: &[u8], key: &LookupKey<'_>) -> Option<String> {
    for raw in text.split(|&b| b == b'\n') {
        // C string functions stop at a NUL byte.
        let line = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        if line.first() == Some(&b'#') {
            continue;
        }
        let end = line
            .iter()
            .rposition(|&b| b != b'\r')
            .map_or(0, |at| at + 1);
        let line = &line[..end];
        if line.is_empty() {
            continue;
        }
        let password = match_field(line, key.host.as_bytes())
            .and_then(|rest| match_field(rest, key.port.as_bytes()))
            .and_then(|rest| match_field(rest, key.dbname.as_bytes()))
            .and_then(|rest| match_field(rest, key.user.as_bytes()));
        if let Some(field) = password {
            return Some(unescape_password(field));
        }
    }
    None
}

/// Reads `path` and looks `key` up, with libpq's checks on the file.
pub(crate) fn lookup(path: &str, key: &LookupKey<'_>) -> PasswordFileLookup {
    if key.dbname.is_empty() || key.user.is_empty() {
        return PasswordFileLookup::NotFound;
    }
    let Ok(mut file) = File::open(path) else {
        return PasswordFileLookup::NotFound;
    };
    let Ok(metadata) = file.metadata() else {
        return PasswordFileLookup::NotFound;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if !metadata.is_file() {
            return PasswordFileLookup::Refused(format!(
                "WARNING: password file \"{path}\" is not a plain file"
            ));
        }
        if metadata.permissions().mode() & 0o077 != 0 {
            return PasswordFileLookup::Refused(format!(
                "WARNING: password file \"{path}\" has group or world access; permissions should be u=rw (0600) or less"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let mut text = Vec::new();
    if file.read_to_end(&mut text).is_err() {
        return PasswordFileLookup::NotFound;
    }
    match find_password(&text, key) {
        Some(password) => PasswordFileLookup::Found(password),
        None => PasswordFileLookup::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(host: &'a str, port: &'a str, dbname: &'a str, user: &'a str) -> LookupKey<'a> {
        LookupKey {
            host,
            port,
            dbname,
            user,
        }
    }

    #[test]
    fn fields_match_literally_with_wildcards_and_escapes() {
        assert_eq!(match_field(b"db:rest", b"db"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"*:rest", b"anything"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"*:rest", b""), Some(&b"rest"[..]));
        assert_eq!(match_field(b"db:rest", b"d"), None);
        assert_eq!(match_field(b"d:rest", b"db"), None);
        assert_eq!(match_field(b"DB:rest", b"db"), None);
        assert_eq!(match_field(b"a\\:b:rest", b"a:b"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"a\\\\:rest", b"a\\"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"\\*:rest", b"*"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"\\*:rest", b"x"), None);
        // '*' only as a whole field.
        assert_eq!(match_field(b"db*:rest", b"dbx"), None);
        // No ':' after the field: no match.
        assert_eq!(match_field(b"db", b"db"), None);
        assert_eq!(match_field(b"db\\", b"db"), None);
        assert_eq!(match_field(b"", b""), None);
        assert_eq!(match_field(b":rest", b""), Some(&b"rest"[..]));
    }

    #[test]
    fn passwords_are_unescaped_up_to_a_colon() {
        assert_eq!(unescape_password(b"secret"), "secret");
        assert_eq!(unescape_password(b"a\\:b\\\\c"), "a:b\\c");
        assert_eq!(unescape_password(b"a:ignored"), "a");
        assert_eq!(unescape_password(b"trailing\\"), "trailing\\");
        assert_eq!(unescape_password(b""), "");
    }

    #[test]
    fn first_matching_line_wins() {
        let text = b"# localhost:5432:db:u:commented\n\
                     otherhost:*:*:*:other\n\
                     localhost:5433:*:*:port5433\r\n\
                     \n\
                     localhost:*:db:u:first\n\
                     *:*:*:*:fallback\n";
        let find = |h, p, d, u| find_password(text, &key(h, p, d, u));
        assert_eq!(
            find("localhost", "5432", "db", "u").as_deref(),
            Some("first")
        );
        assert_eq!(
            find("localhost", "5433", "db", "u").as_deref(),
            Some("port5433")
        );
        assert_eq!(find("otherhost", "1", "x", "y").as_deref(), Some("other"));
        assert_eq!(find("h", "1", "x", "y").as_deref(), Some("fallback"));
        assert_eq!(find_password(b"a:b:c:d:e", &key("a", "b", "c", "x")), None);
        assert_eq!(find_password(b"a:b:c:d", &key("a", "b", "c", "d")), None);
        assert_eq!(
            find_password(b"a:b:c:d:", &key("a", "b", "c", "d")).as_deref(),
            Some("")
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_with_group_or_world_access_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").unwrap();
        let shown = path.display().to_string();
        let k = key("h", "5432", "d", "u");
        for (mode, refused) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let found = lookup(&shown, &k);
            if refused {
                assert_eq!(
                    found,
                    PasswordFileLookup::Refused(format!(
                        "WARNING: password file \"{shown}\" has group or world access; permissions should be u=rw (0600) or less"
                    )),
                    "{mode:o}"
                );
            } else {
                assert_eq!(found.password(), Some("pw"), "{mode:o}");
            }
        }
        let dir_path = dir.path().display().to_string();
        assert_eq!(
            lookup(&dir_path, &k),
            PasswordFileLookup::Refused(format!(
                "WARNING: password file \"{dir_path}\" is not a plain file"
            ))
        );
        assert_eq!(
            lookup("/nonexistent/pgpass", &k),
            PasswordFileLookup::NotFound
        );
        // No database or user name: libpq does not look.
        assert_eq!(
            lookup(&shown, &key("h", "1", "", "u")),
            PasswordFileLookup::NotFound
        );
        assert!(!format!("{:?}", PasswordFileLookup::Found("pw".into())).contains("pw"));
    }
}
