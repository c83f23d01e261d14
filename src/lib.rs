//! pgtls
