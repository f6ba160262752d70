//! Kiln facade.
