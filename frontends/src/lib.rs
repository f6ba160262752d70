//! Kiln frontends.
