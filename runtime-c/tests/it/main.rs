//! Integration tests of the Kiln C API, one binary: the generated header is up to date, the C
//! example builds and matches the Rust API bit for bit (and runs clean under valgrind), and every
//! error path returns a status with a readable message.

mod c_example;
mod common;
mod errors;
mod header;
