//! The few pre-TLS packets of the PostgreSQL protocol that pgtls speaks.
//!
//! Everything here is byte-exact and allocation-free except [`cancel_request`], whose
//! key length varies (protocol 3.2, PostgreSQL 18, allows keys up to 256 bytes).

use crate::error::Error;

/// The request code of `SSLRequest`: `1234 << 16 | 5679`.
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// The request code of `GSSENCRequest`: `1234 << 16 | 5680`.
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// The request code of `CancelRequest`: `1234 << 16 | 5678`.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// The 8-byte `SSLRequest` packet: length 8 (including itself), then the request code.
pub const SSL_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xD2, 0x16, 0x2F];
/// The 8-byte `GSSENCRequest` packet (pgtls never sends it; servers and tests recognise it).
pub const GSSENC_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xD2, 0x16, 0x30];

/// The first byte of a TLS handshake record: how a server recognises direct TLS.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The ALPN protocol identifier PostgreSQL registered: offered on every TLS connection.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The shortest cancel key (protocol 3.0: 4 bytes).
pub const MIN_CANCEL_KEY_LEN: usize = 4;
/// The longest cancel key protocol 3.2 allows (PostgreSQL 18).
pub const MAX_CANCEL_KEY_LEN: usize = 256;

/// The server's one-byte answer to `SSLRequest`, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslResponse {
    /// `S`: the server will do TLS; the client sends its ClientHello next.
    Accepted,
    /// `N`: no TLS; the same connection stays usable in plaintext.
    Refused,
    /// `E`: the server answered with an error message instead. It is not read (the server
    /// is not authenticated yet) and the attempt fails in every sslmode.
    ErrorResponse,
}

/// Decodes the server's response byte to `SSLRequest`.
///
/// # Errors
/// Any byte other than `S`, `N` or `E` gives libpq's
/// `received invalid response to SSL negotiation: <c>`.
pub fn decode_ssl_response(byte: u8) -> Result<SslResponse, Error> {
    match byte {
        b'S' => Ok(SslResponse::Accepted),
        b'N' => Ok(SslResponse::Refused),
        b'E' => Ok(SslResponse::ErrorResponse),
        other => Err(Error::InvalidSslResponse(other)),
    }
}

/// Encodes a `CancelRequest` for backend `process_id` with its secret `key`.
///
/// The packet is: length (4 bytes, including itself), the cancel request code, the process
/// id, then the key (4 bytes before protocol 3.2, up to 256 bytes after).
///
/// # Errors
/// [`Error::Misuse`] when the key is shorter than 4 or longer than 256 bytes.
///
/// ```
/// let packet = pgtls::wire::cancel_request(1234, &[1, 2, 3, 4]).unwrap();
/// assert_eq!(packet, [0, 0, 0, 16, 0x04, 0xD2, 0x16, 0x2E, 0, 0, 0x04, 0xD2, 1, 2, 3, 4]);
/// ```
pub fn cancel_request(process_id: u32, key: &[u8]) -> Result<Vec<u8>, Error> {
    if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&key.len()) {
        return Err(Error::Misuse(
            "a cancel key must be between 4 and 256 bytes long",
        ));
    }
    // 12 + 256 fits easily in u32; the range check above bounds it.
    let len = (12 + key.len()) as u32;
    let mut packet = Vec::with_capacity(12 + key.len());
    packet.extend_from_slice(&len.to_be_bytes());
    packet.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
    packet.extend_from_slice(&process_id.to_be_bytes());
    packet.extend_from_slice(key);
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_request_is_length_eight_and_the_documented_code() {
        assert_eq!(
            SSL_REQUEST,
            [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f]
        );
        assert_eq!(u32::from_be_bytes([0, 0, 0, 8]), 8);
        assert_eq!(SSL_REQUEST_CODE, (1234 << 16) | 5679);
        assert_eq!(&SSL_REQUEST[4..], &SSL_REQUEST_CODE.to_be_bytes());
        assert_eq!(GSSENC_REQUEST_CODE, (1234 << 16) | 5680);
        assert_eq!(&GSSENC_REQUEST[4..], &GSSENC_REQUEST_CODE.to_be_bytes());
        assert_eq!(CANCEL_REQUEST_CODE, (1234 << 16) | 5678);
    }

    #[test]
    fn every_response_byte_decodes_as_libpq_does() {
        for byte in 0..=255u8 {
            let decoded = decode_ssl_response(byte);
            match byte {
                b'S' => assert_eq!(decoded.unwrap(), SslResponse::Accepted),
                b'N' => assert_eq!(decoded.unwrap(), SslResponse::Refused),
                b'E' => assert_eq!(decoded.unwrap(), SslResponse::ErrorResponse),
                _ => {
                    let err = decoded.unwrap_err();
                    assert!(matches!(err, Error::InvalidSslResponse(b) if b == byte));
                }
            }
        }
        assert_eq!(
            decode_ssl_response(b'X').unwrap_err().to_string(),
            "received invalid response to SSL negotiation: X"
        );
    }

    #[test]
    fn cancel_request_vectors() {
        let four = cancel_request(0x0102_0304, &[9, 8, 7, 6]).unwrap();
        assert_eq!(
            four,
            [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 1, 2, 3, 4, 9, 8, 7, 6]
        );
        let long = cancel_request(7, &[0xAB; 256]).unwrap();
        assert_eq!(long.len(), 268);
        assert_eq!(&long[..4], &268u32.to_be_bytes());
        assert!(long[12..].iter().all(|&b| b == 0xAB));
        assert!(cancel_request(7, &[1, 2, 3]).is_err());
        assert!(cancel_request(7, &[0; 257]).is_err());
    }
}
