//! The IO adapters: thin shells over [`crate::setup::ConnectionSetup`] for each runtime.

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "futures-io")]
pub mod futures_io;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tokio-postgres")]
pub mod tokio_postgres;
