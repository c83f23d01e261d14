//! Certificate verification the way libpq applies it per sslmode.

mod chain;
mod crl;
mod hostname;
mod signature;
