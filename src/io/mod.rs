//! The IO adapters: thin shells over [`crate::setup::ConnectionSetup`] for each runtime.
//!
//! What they share is defined once: the types of their `connect` ([`crate::setup::Connected`],
//! [`crate::setup::StartupError`], [`crate::setup::Failed`], re-exported by each adapter),
//! the thread's scratch buffer, and the helpers below. The futures-io adapter is the tokio
//! adapter's stream and loop seen through the futures-io traits.

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "futures-io")]
pub mod futures_io;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tokio-postgres")]
pub mod tokio_postgres;

#[cfg(any(feature = "blocking", feature = "tokio"))]
pub(crate) use shared::{misuse, report_startup_error, to_io};

#[cfg(any(feature = "blocking", feature = "tokio"))]
mod shared {
    use std::io;

    use crate::error::Error;
    use crate::error_response::ErrorResponse;
    use crate::setup::{ConnectError, ConnectionSetup, Failed, StartupError};

    /// A pgtls error as an `io::Error` for a stream's reader or writer (the error stays
    /// reachable through `get_ref`).
    pub(crate) fn to_io(err: Error) -> io::Error {
        let kind = match err {
            Error::UncleanEof => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }

    /// Reports the driver's failed startup to the machine; a transport error goes to
    /// `transport_error`, which applies the adapter's clock.
    pub(crate) fn report_startup_error(
        setup: &mut ConnectionSetup,
        err: StartupError,
        transport_error: impl FnOnce(&mut ConnectionSetup, io::Error) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match err {
            StartupError::Rejected { sqlstate, message } => {
                setup.handle_startup_error(ErrorResponse {
                    severity: None,
                    sqlstate,
                    message,
                })
            }
            StartupError::Io(err) => transport_error(setup, err),
            StartupError::Fatal(err) => setup.handle_startup_failed(err.to_string()),
        }
    }

    /// A machine misuse inside an adapter (a pgtls bug), as a failed connection.
    pub(crate) fn misuse(err: Error, setup: &mut ConnectionSetup) -> Box<Failed> {
        Box::new(Failed {
            error: ConnectError::Tls(err),
            attempts: setup.take_attempts(),
            try_next_host: false,
        })
    }
}
