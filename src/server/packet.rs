//! The first packet of a connection as a server reads it, and the one message a server
//! writes before handing over (an ErrorResponse).
//!
//! Every first packet is `length (4 bytes, including itself), code or protocol version
//! (4 bytes), body`. [`PacketReader`] reads one from pieces of any size, checking the
//! length before it allocates: at most [`MAX_FIRST_PACKET_BYTES`] bytes are ever held.

use super::error::AcceptError;
use crate::wire::{
    CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_CANCEL_KEY_LEN, MIN_CANCEL_KEY_LEN,
    SSL_REQUEST_CODE,
};

/// PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`: the longest first packet accepted, *not
/// counting* its 4-byte length word (`ProcessStartupPacket` subtracts the length word
/// before it compares), so whole packets of up to [`MAX_FIRST_PACKET_BYTES`] pass.
pub const MAX_STARTUP_PACKET_LENGTH: usize = 10_000;

/// The longest first packet accepted, length word included: 10004 bytes, exactly as
/// PostgreSQL (15 to 18) accepts.
pub const MAX_FIRST_PACKET_BYTES: usize = MAX_STARTUP_PACKET_LENGTH + 4;

/// A StartupMessage as the client sent it (length prefix included), checked for
/// PostgreSQL's layout: protocol 3.x, then `name\0value\0` pairs and a final `\0`.
#[derive(Clone, PartialEq, Eq)]
pub struct StartupMessage {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for StartupMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor) = self.protocol_version();
        f.debug_struct("StartupMessage")
            .field("protocol", &format_args!("{major}.{minor}"))
            .field("user", &self.user())
            .field("database", &self.database())
            .finish_non_exhaustive()
    }
}

impl StartupMessage {
    /// Checks a whole StartupMessage (length prefix included).
    ///
    /// # Errors
    /// A length that does not match or lies outside 8..=10004, a protocol other than 3.x,
    /// or parameters that are not NUL-terminated pairs ending with a NUL.
    ///
    /// ```
    /// let mut packet = vec![0, 0, 0, 0, 0, 3, 0, 0];
    /// packet.extend_from_slice(b"user\0alice\0\0");
    /// let len = packet.len() as u32;
    /// packet[..4].copy_from_slice(&len.to_be_bytes());
    /// let startup = pgtls::server::StartupMessage::parse(&packet).unwrap();
    /// assert_eq!(startup.user(), Some("alice"));
    /// assert_eq!(startup.database(), Some("alice")); // PostgreSQL's default
    /// ```
    pub fn parse(packet: &[u8]) -> Result<StartupMessage, AcceptError> {
        let header = packet
            .get(..8)
            .ok_or(AcceptError::InvalidStartupPacketLength)?;
        let len = be_u32(&header[..4]) as usize;
        if len != packet.len() || !(8..=MAX_FIRST_PACKET_BYTES).contains(&len) {
            return Err(AcceptError::InvalidStartupPacketLength);
        }
        check_protocol(be_u32(&header[4..8]))?;
        check_layout(&packet[8..])?;
        Ok(StartupMessage {
            bytes: packet.to_vec(),
        })
    }

    /// The packet as received, ready to forward.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The packet as received.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The protocol version (major, minor): (3, 0) for libpq before 18, (3, 2) and up
    /// when a client asks for the newer protocol.
    pub fn protocol_version(&self) -> (u16, u16) {
        let code = be_u32(&self.bytes[4..8]);
        ((code >> 16) as u16, code as u16)
    }

    /// The parameters as raw (name, value) pairs, in order (values are in the client's
    /// encoding, usually but not necessarily UTF-8).
    pub fn parameters(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut rest = &self.bytes[8..];
        std::iter::from_fn(move || {
            let (name, after) = split_nul(rest)?;
            if name.is_empty() {
                return None;
            }
            let (value, after) = split_nul(after)?;
            rest = after;
            Some((name, value))
        })
    }

    /// The value of parameter `name`, if present and valid UTF-8.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters()
            .find(|(n, _)| *n == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// `user`.
    pub fn user(&self) -> Option<&str> {
        self.parameter("user")
    }

    /// `database`, defaulting to the user name as PostgreSQL does.
    pub fn database(&self) -> Option<&str> {
        self.parameter("database").or_else(|| self.user())
    }
}

/// A CancelRequest: the backend's process id and its secret key (4 bytes before protocol
/// 3.2, up to 256 after).
#[derive(Clone, PartialEq, Eq)]
pub struct CancelRequest {
    process_id: u32,
    key: Vec<u8>,
}

impl std::fmt::Debug for CancelRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: show only its length.
        f.debug_struct("CancelRequest")
            .field("process_id", &self.process_id)
            .field("key_len", &self.key.len())
            .finish()
    }
}

impl CancelRequest {
    /// The backend process id to cancel.
    pub fn process_id(&self) -> u32 {
        self.process_id
    }

    /// The secret key (compare it in constant time before acting on it).
    pub fn secret_key(&self) -> &[u8] {
        &self.key
    }

    /// The packet again, to forward to the server that owns the backend.
    pub fn to_bytes(&self) -> Vec<u8> {
        // The key length was checked on the way in, so this cannot fail; fall back to an
        // empty packet rather than panic.
        crate::wire::cancel_request(self.process_id, &self.key).unwrap_or_default()
    }
}

/// The client's first real packet, after any `SSLRequest` / `GSSENCRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstPacket {
    /// A StartupMessage: forward it, or authenticate the client.
    Startup(StartupMessage),
    /// A CancelRequest: act on it (or forward it), then close the connection.
    Cancel(CancelRequest),
}

/// What the reader found.
#[derive(Debug)]
pub(crate) enum Packet {
    SslRequest,
    GssEncRequest,
    First(FirstPacket),
}

/// Reads one first packet from pieces; holds at most [`MAX_FIRST_PACKET_BYTES`] bytes.
#[derive(Debug, Default)]
pub(crate) struct PacketReader {
    head: [u8; 8],
    head_len: usize,
    /// The announced length, once the first four bytes are in.
    len: usize,
    body: Vec<u8>,
}

impl PacketReader {
    /// How many more bytes the packet needs (at least 1 while it is incomplete).
    pub(crate) fn want(&self) -> usize {
        if self.head_len < 8 {
            8 - self.head_len
        } else {
            self.len - 8 - self.body.len()
        }
    }

    /// Takes at most [`Self::want`] bytes from `input`; returns how many it took and the
    /// packet when complete. The reader is reset after a complete packet.
    pub(crate) fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Packet>), AcceptError> {
        let take = self.want().min(input.len());
        let input = &input[..take];
        if self.head_len < 8 {
            let end = self.head_len + take;
            self.head[self.head_len..end].copy_from_slice(input);
            let before = self.head_len;
            self.head_len = end;
            if before < 4 && end >= 4 {
                self.len = be_u32(&self.head[..4]) as usize;
                if !(8..=MAX_FIRST_PACKET_BYTES).contains(&self.len) {
                    return Err(AcceptError::InvalidStartupPacketLength);
                }
            } else if before == 0 && end >= 1 && self.head[0] != 0 {
                // Any length up to 10004 starts with a zero byte: refuse at once.
                return Err(AcceptError::InvalidStartupPacketLength);
            }
            if end == 8 {
                self.check_code()?;
                self.body = Vec::with_capacity(self.len - 8);
            }
        } else {
            self.body.extend_from_slice(input);
        }
        if self.head_len == 8 && self.want() == 0 {
            let packet = self.finish()?;
            *self = PacketReader::default();
            return Ok((take, Some(packet)));
        }
        Ok((take, None))
    }

    /// Checks the code against the length as soon as both are known.
    fn check_code(&self) -> Result<(), AcceptError> {
        match be_u32(&self.head[4..8]) {
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE if self.len != 8 => {
                Err(AcceptError::InvalidStartupPacketLength)
            }
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => Ok(()),
            CANCEL_REQUEST_CODE => {
                // Length, code and process id (12 bytes), then the key.
                let key = self.len.saturating_sub(12);
                if (MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&key) {
                    Ok(())
                } else {
                    Err(AcceptError::InvalidCancelRequestLength)
                }
            }
            code => check_protocol(code),
        }
    }

    fn finish(&mut self) -> Result<Packet, AcceptError> {
        let code = be_u32(&self.head[4..8]);
        Ok(match code {
            SSL_REQUEST_CODE => Packet::SslRequest,
            GSSENC_REQUEST_CODE => Packet::GssEncRequest,
            CANCEL_REQUEST_CODE => {
                let body = std::mem::take(&mut self.body);
                let process_id = be_u32(body.get(..4).unwrap_or(&[0; 4]));
                Packet::First(FirstPacket::Cancel(CancelRequest {
                    process_id,
                    key: body.get(4..).unwrap_or_default().to_vec(),
                }))
            }
            _ => {
                check_layout(&self.body)?;
                let mut bytes = Vec::with_capacity(self.len);
                bytes.extend_from_slice(&self.head);
                bytes.extend_from_slice(&self.body);
                Packet::First(FirstPacket::Startup(StartupMessage { bytes }))
            }
        })
    }
}

/// Protocol 3.x only (any minor: newer ones are negotiated down by the server); the
/// special request codes are refused here, as PostgreSQL refuses a repeated one.
fn check_protocol(code: u32) -> Result<(), AcceptError> {
    let (major, minor) = ((code >> 16) as u16, code as u16);
    if major == 3 {
        Ok(())
    } else {
        Err(AcceptError::UnsupportedProtocol { major, minor })
    }
}

/// `name\0value\0 ... \0`, the terminator exactly at the end (PostgreSQL's rule).
fn check_layout(mut params: &[u8]) -> Result<(), AcceptError> {
    loop {
        match params {
            [0] => return Ok(()),
            [] => return Err(AcceptError::InvalidStartupPacketLayout),
            _ => {}
        }
        let (name, after) = split_nul(params).ok_or(AcceptError::InvalidStartupPacketLayout)?;
        if name.is_empty() {
            // A terminator before the end.
            return Err(AcceptError::InvalidStartupPacketLayout);
        }
        let (_, after) = split_nul(after).ok_or(AcceptError::InvalidStartupPacketLayout)?;
        params = after;
    }
}

fn split_nul(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..nul], &bytes[nul + 1..]))
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    let n = bytes.len().min(4);
    word[..n].copy_from_slice(&bytes[..n]);
    u32::from_be_bytes(word)
}

/// Encodes a FATAL ErrorResponse (protocol 3): severity, SQLSTATE, message and an optional
/// hint, as PostgreSQL sends before closing.
///
/// ```
/// let msg = pgtls::server::error_response("28000", "no", None);
/// assert_eq!(msg[0], b'E');
/// assert_eq!(&msg[1..5], &((msg.len() - 1) as u32).to_be_bytes());
/// ```
pub fn error_response(sqlstate: &str, message: &str, hint: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + message.len());
    let mut field = |code: u8, value: &str| {
        body.push(code);
        // NUL bytes would end the field early: drop them.
        body.extend(value.bytes().filter(|&b| b != 0));
        body.push(0);
    };
    field(b'S', "FATAL");
    field(b'V', "FATAL");
    field(b'C', sqlstate);
    field(b'M', message);
    if let Some(hint) = hint {
        field(b'H', hint);
    }
    body.push(0);
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(b'E');
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(params: &[u8]) -> Vec<u8> {
        let mut packet = vec![0, 0, 0, 0, 0, 3, 0, 0];
        packet.extend_from_slice(params);
        let len = packet.len() as u32;
        packet[..4].copy_from_slice(&len.to_be_bytes());
        packet
    }

    fn read_all(bytes: &[u8], step: usize) -> Result<(usize, Option<Packet>), AcceptError> {
        let mut reader = PacketReader::default();
        let mut used = 0;
        while used < bytes.len() {
            let end = (used + step).min(bytes.len());
            let (n, packet) = reader.push(&bytes[used..end])?;
            used += n;
            if packet.is_some() {
                return Ok((used, packet));
            }
        }
        Ok((used, None))
    }

    #[test]
    fn requests_and_startups_in_any_split() {
        let st = startup(b"user\0u\0database\0d\0\0");
        for step in [1, 2, 3, 7, 8, 100] {
            assert!(matches!(
                read_all(&crate::wire::SSL_REQUEST, step).unwrap(),
                (8, Some(Packet::SslRequest))
            ));
            assert!(matches!(
                read_all(&crate::wire::GSSENC_REQUEST, step).unwrap(),
                (8, Some(Packet::GssEncRequest))
            ));
            let (used, packet) = read_all(&st, step).unwrap();
            assert_eq!(used, st.len());
            match packet {
                Some(Packet::First(FirstPacket::Startup(s))) => {
                    assert_eq!(s.as_bytes(), &st[..]);
                    assert_eq!(s.user(), Some("u"));
                    assert_eq!(s.database(), Some("d"));
                    assert_eq!(s.protocol_version(), (3, 0));
                    assert_eq!(s.parameters().count(), 2);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn cancel_keys_from_4_to_256_bytes() {
        for key_len in [0usize, 3, 4, 32, 256, 257] {
            let mut packet = vec![0, 0, 0, 0];
            packet.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
            packet.extend_from_slice(&7u32.to_be_bytes());
            packet.extend(std::iter::repeat_n(0xAB, key_len));
            let len = packet.len() as u32;
            packet[..4].copy_from_slice(&len.to_be_bytes());
            let got = read_all(&packet, 5);
            if (4..=256).contains(&key_len) {
                match got.unwrap().1 {
                    Some(Packet::First(FirstPacket::Cancel(c))) => {
                        assert_eq!(c.process_id(), 7);
                        assert_eq!(c.secret_key().len(), key_len);
                        assert_eq!(c.to_bytes(), packet);
                    }
                    other => panic!("{other:?}"),
                }
            } else {
                assert!(matches!(got, Err(AcceptError::InvalidCancelRequestLength)));
            }
        }
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        // 10005 bytes: one more than PostgreSQL accepts.
        let mut reader = PacketReader::default();
        assert!(matches!(
            reader.push(&[0, 0, 0x27, 0x15]),
            Err(AcceptError::InvalidStartupPacketLength)
        ));
        let mut reader = PacketReader::default();
        assert!(matches!(
            reader.push(&[0x7f]),
            Err(AcceptError::InvalidStartupPacketLength)
        ));
        let mut reader = PacketReader::default();
        assert!(matches!(
            reader.push(&[0, 0, 0, 7]),
            Err(AcceptError::InvalidStartupPacketLength)
        ));
        // Exactly the maximum (10000 after the length word, as PostgreSQL counts) is fine.
        let mut reader = PacketReader::default();
        let (n, none) = reader.push(&[0, 0, 0x27, 0x14, 0, 3, 0, 0]).unwrap();
        assert_eq!((n, none.is_none()), (8, true));
        assert_eq!(reader.want(), 10_004 - 8);
        // An SSLRequest code with another length is refused.
        let mut reader = PacketReader::default();
        let mut long_ssl = vec![0, 0, 0, 12];
        long_ssl.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        assert!(reader.push(&long_ssl).is_err());
    }

    #[test]
    fn layouts_and_versions() {
        for bad in [
            &b""[..],
            b"user",
            b"user\0",
            b"user\0u",
            b"user\0u\0",
            b"\0\0",
            b"user\0u\0\0\0",
        ] {
            assert!(
                matches!(
                    read_all(&startup(bad), 64),
                    Err(AcceptError::InvalidStartupPacketLayout)
                ),
                "{bad:?}"
            );
        }
        assert!(read_all(&startup(b"\0"), 64).is_ok());
        let mut v2 = startup(b"\0");
        v2[4..8].copy_from_slice(&0x0002_0000u32.to_be_bytes());
        assert!(matches!(
            read_all(&v2, 64),
            Err(AcceptError::UnsupportedProtocol { major: 2, minor: 0 })
        ));
        let mut v32 = startup(b"user\0u\0\0");
        v32[4..8].copy_from_slice(&0x0003_0002u32.to_be_bytes());
        assert!(read_all(&v32, 64).is_ok());
        assert!(StartupMessage::parse(&v32).is_ok());
        assert!(StartupMessage::parse(&v32[..v32.len() - 1]).is_err());
    }

    #[test]
    fn error_response_layout() {
        let msg = error_response("28000", "bad\0news", Some("hint"));
        assert_eq!(msg[0], b'E');
        assert_eq!(
            u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]) as usize,
            msg.len() - 1
        );
        let body = &msg[5..];
        assert!(body.ends_with(b"Hhint\0\0"));
        assert!(body.windows(9).any(|w| w == b"Mbadnews\0"));
        assert!(body.starts_with(b"SFATAL\0VFATAL\0C28000\0"));
    }
}
