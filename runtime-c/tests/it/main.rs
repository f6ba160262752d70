//! Integration tests of the Kiln C API, one binary: the generated header is up to date, and
//! every error path returns a status with a readable message.

mod common;
mod errors;
mod header;
