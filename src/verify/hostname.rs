//! TEMPORARY stub on main until the hostname branch lands.
#![allow(dead_code)]
use std::net::IpAddr;
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostNameError;
impl std::fmt::Display for HostNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}
pub(crate) fn check_host_name(_der: &[u8], _host: &str) -> Result<(), HostNameError> {
    Err(HostNameError)
}
pub(crate) fn parse_host_ip(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}
pub(crate) fn sni_allowed(host: &str) -> bool {
    !host.is_empty()
        && !host.contains(':')
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}
