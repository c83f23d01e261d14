//! The operating system's words for an `io::Error`, as libpq prints them (`strerror`'s or
//! `gai_strerror`'s text alone). Shared by the connection setup, the adapters and the
//! libpq settings layer's transport messages.

use std::io;

/// `err`'s text without Rust's ` (os error N)` suffix and its
/// `failed to lookup address information: ` prefix.
pub(crate) fn os_error_text(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text[..],
    };
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(text)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_suffix_and_lookup_prefix_are_dropped() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&refused), "Connection refused");
        let custom =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(os_error_text(&custom), "Name or service not known");
        let plain = io::Error::other("no addresses (os error");
        assert_eq!(os_error_text(&plain), "no addresses (os error");
    }
}
