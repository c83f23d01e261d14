//! A decoder for the server's `ErrorResponse` message, so that a driver can hand the raw
//! bytes of a rejected startup to [`crate::setup::ConnectionSetup`] without parsing them.
//!
//! The message is `E`, a 32-bit length (counting itself), then fields — one type byte,
//! a NUL-terminated string — ended by a zero byte. Only the fields libpq's retry rules
//! need are kept: the SQLSTATE (`C`: `28000` makes `allow`/`prefer` retry with the other
//! encryption, `57P03` moves to the next host), the severity and the message.
//!
//! Decoding never panics and allocates at most the three kept strings, each no longer
//! than the input.
//!
//! ```
//! use pgtls::error_response::ErrorResponse;
//!
//! let body = b"SFATAL\0C28000\0Mno pg_hba.conf entry\0\0";
//! let mut message = vec![b'E'];
//! message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
//! message.extend_from_slice(body);
//! let decoded = ErrorResponse::decode(&message).unwrap();
//! assert_eq!(decoded.sqlstate.as_deref(), Some("28000"));
//! assert_eq!(decoded.message, "no pg_hba.conf entry");
//! ```

use std::fmt;

/// The fields of an `ErrorResponse` that decide libpq's retries. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorResponse {
    /// The severity (`S`: `FATAL`, `ERROR`, ...), if present.
    pub severity: Option<String>,
    /// The SQLSTATE (`C`), if present.
    pub sqlstate: Option<String>,
    /// The primary message (`M`); empty if absent.
    pub message: String,
}

/// Why [`ErrorResponse::decode`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedErrorResponse {
    /// The first byte is not `E`.
    NotAnErrorResponse,
    /// The length field disagrees with the bytes given, or is below 4.
    BadLength,
    /// A field is not NUL-terminated, or the final zero byte is missing.
    Unterminated,
}

impl fmt::Display for MalformedErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MalformedErrorResponse::NotAnErrorResponse => "not an ErrorResponse message",
            MalformedErrorResponse::BadLength => "ErrorResponse length does not match",
            MalformedErrorResponse::Unterminated => "ErrorResponse field is not terminated",
        })
    }
}

impl std::error::Error for MalformedErrorResponse {}

impl ErrorResponse {
    /// Decodes one whole message: `E`, the length, the fields. Bytes after the message
    /// are refused (pass exactly one message).
    ///
    /// # Errors
    /// [`MalformedErrorResponse`] when the bytes are not one well-formed message.
    pub fn decode(message: &[u8]) -> Result<ErrorResponse, MalformedErrorResponse> {
        let Some((&b'E', rest)) = message.split_first() else {
            return Err(MalformedErrorResponse::NotAnErrorResponse);
        };
        let (len, body) = match rest.split_first_chunk::<4>() {
            Some((len, body)) => (u32::from_be_bytes(*len) as usize, body),
            None => return Err(MalformedErrorResponse::BadLength),
        };
        if len < 4 || len - 4 != body.len() {
            return Err(MalformedErrorResponse::BadLength);
        }
        ErrorResponse::decode_fields(body)
    }

    /// Decodes the fields alone (the message body after the length), for drivers that
    /// have already split the framing off.
    ///
    /// # Errors
    /// [`MalformedErrorResponse::Unterminated`] when a field or the body is cut short.
    pub fn decode_fields(mut body: &[u8]) -> Result<ErrorResponse, MalformedErrorResponse> {
        let mut decoded = ErrorResponse::default();
        loop {
            let Some((&kind, rest)) = body.split_first() else {
                return Err(MalformedErrorResponse::Unterminated);
            };
            if kind == 0 {
                return if rest.is_empty() {
                    Ok(decoded)
                } else {
                    Err(MalformedErrorResponse::Unterminated)
                };
            }
            let Some(end) = rest.iter().position(|&b| b == 0) else {
                return Err(MalformedErrorResponse::Unterminated);
            };
            let value = String::from_utf8_lossy(&rest[..end]).into_owned();
            match kind {
                b'S' => decoded.severity = Some(value),
                b'C' => decoded.sqlstate = Some(value),
                b'M' => decoded.message = value,
                _ => {}
            }
            body = &rest[end + 1..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut message = vec![b'E'];
        message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    #[test]
    fn decodes_the_fields_libpq_needs() {
        let message = framed(b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0");
        let decoded = ErrorResponse::decode(&message).unwrap();
        assert_eq!(decoded.severity.as_deref(), Some("FATAL"));
        assert_eq!(decoded.sqlstate.as_deref(), Some("57P03"));
        assert_eq!(decoded.message, "the database system is starting up");
    }

    #[test]
    fn refuses_malformed_messages() {
        use MalformedErrorResponse::*;
        assert_eq!(ErrorResponse::decode(b""), Err(NotAnErrorResponse));
        assert_eq!(
            ErrorResponse::decode(b"R\0\0\0\x08\0\0\0\0"),
            Err(NotAnErrorResponse)
        );
        assert_eq!(ErrorResponse::decode(b"E\0\0"), Err(BadLength));
        assert_eq!(ErrorResponse::decode(b"E\0\0\0\x02"), Err(BadLength));
        assert_eq!(ErrorResponse::decode(&framed(b"SFATAL")), Err(Unterminated));
        assert_eq!(
            ErrorResponse::decode(&framed(b"SFATAL\0")),
            Err(Unterminated)
        );
        assert_eq!(ErrorResponse::decode(&framed(b"\0x")), Err(Unterminated));
        let mut long = framed(b"\0");
        long.push(0);
        assert_eq!(ErrorResponse::decode(&long), Err(BadLength));
    }
}
