//! pgtls (crate docs are written in a later commit).

mod channel_binding;
mod verify;
