//! TEMPORARY stub on main until the hostname branch lands.
#[derive(Debug, Clone, PartialEq, Eq)]
/// stub
pub enum ChannelBindingError {
    /// stub
    NoCertificate,
}
impl std::fmt::Display for ChannelBindingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}
impl std::error::Error for ChannelBindingError {}
/// stub
pub fn tls_server_end_point(_der: &[u8]) -> Result<Vec<u8>, ChannelBindingError> {
    Err(ChannelBindingError::NoCertificate)
}
