//! One scratch buffer per thread for the IO adapters, so that an idle stream holds no
//! buffer of its own: TLS bytes move between the transport and the session through it.
//! Only ciphertext and handshake records pass through it, never decrypted data.

use std::cell::Cell;

/// Size of the scratch buffer: one maximal TLS record plus headers.
pub(crate) const SCRATCH_LEN: usize = 17 * 1024;

std::thread_local! {
    static SCRATCH: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's scratch buffer (`SCRATCH_LEN` bytes, allocated on first
/// use). A nested call (a transport that is itself a pgtls stream) gets a buffer of its
/// own.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = SCRATCH
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0u8; SCRATCH_LEN].into_boxed_slice());
    let result = f(&mut buf);
    let _ = SCRATCH.try_with(|scratch| scratch.set(Some(buf)));
    result
}
