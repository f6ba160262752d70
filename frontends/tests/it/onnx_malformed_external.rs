//! Malformed external data: locations that leave the model folder (absolute, `..`, symlinks)
//! and byte ranges that do not fit the file, each refused with its specific message.

use crate::onnx_common;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::Error;
use onnx_common::{decode_error, expect, external, tensor};
use std::path::Path;

/// A model folder `outer/model/` with `outer/x.bin` (outside it) and `model/w.bin` (16 bytes).
fn external_error(entries: &[(&'static str, &'static str)], setup: impl Fn(&Path, &Path)) -> Error {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("x.bin"), [0u8; 16]).unwrap();
    std::fs::write(dir.join("w.bin"), [0u8; 16]).unwrap();
    setup(outer.path(), &dir);
    let abs = outer.path().join("x.bin").to_string_lossy().into_owned();
    let outside = |v: &'static str| if v == "$OUTER" { abs.as_str() } else { v };
    let entries: Vec<(&str, &str)> = entries.iter().map(|&(k, v)| (k, outside(v))).collect();
    decode_error(&dir, external(tensor("w", DataType::Float, &[4]), &entries))
}

#[test]
fn external_data_outside_the_model_folder_is_refused() {
    let none = |_: &Path, _: &Path| {};
    let e = external_error(&[("location", "$OUTER")], none);
    expect(e, "ExternalData", "is an absolute path");
    let e = external_error(&[("location", "../x.bin")], none);
    expect(
        e,
        "ExternalData",
        "external data `../x.bin`: the location has a `..` component",
    );
    let e = external_error(&[("location", "a/../../x.bin")], none);
    expect(e, "ExternalData", "`..` component");
    let e = external_error(&[("location", "w.bin/..")], none);
    expect(e, "ExternalData", "`..` component");
    let e = external_error(&[("location", "")], none);
    expect(e, "ExternalData", "the location is empty");
}

#[cfg(unix)]
#[test]
fn symlinks_leaving_the_model_folder_are_refused() {
    use std::os::unix::fs::symlink;
    let link =
        |outer: &Path, dir: &Path| symlink(outer.join("x.bin"), dir.join("link.bin")).unwrap();
    let e = external_error(&[("location", "link.bin")], link);
    expect(e, "ExternalData", "outside the model folder");
    let dirlink = |outer: &Path, dir: &Path| symlink(outer, dir.join("up")).unwrap();
    let e = external_error(&[("location", "up/x.bin")], dirlink);
    expect(e, "ExternalData", "outside the model folder");
    let rel = |_: &Path, dir: &Path| symlink("../x.bin", dir.join("rel.bin")).unwrap();
    let e = external_error(&[("location", "rel.bin")], rel);
    expect(e, "ExternalData", "outside the model folder");
}

#[test]
fn external_byte_ranges_must_fit_the_file() {
    let none = |_: &Path, _: &Path| {};
    let e = external_error(&[("location", "nope.bin")], none);
    expect(e, "ExternalData", "not found");
    let sub = |_: &Path, dir: &Path| std::fs::create_dir(dir.join("sub")).unwrap();
    let e = external_error(&[("location", "sub")], sub);
    expect(e, "ExternalData", "is not a regular file");
    let e = external_error(&[("location", "w.bin"), ("offset", "100")], none);
    expect(
        e,
        "ExternalData",
        "offset 100 is past the end of the 16-byte file",
    );
    let e = external_error(
        &[("location", "w.bin"), ("offset", "4"), ("length", "16")],
        none,
    );
    expect(
        e,
        "ExternalData",
        "offset 4 + length 16 runs past the end of the 16-byte file",
    );
    let e = external_error(
        &[("location", "w.bin"), ("offset", "18446744073709551615")],
        none,
    );
    expect(e, "ExternalData", "past the end");
    let e = external_error(&[("location", "w.bin"), ("length", "12")], none);
    expect(
        e,
        "ExternalData",
        "length 12 does not match f32 [4] (16 bytes)",
    );
    let e = external_error(&[("location", "w.bin"), ("offset", "-8")], none);
    expect(
        e,
        "ExternalData",
        "offset `-8` is not a non-negative integer",
    );
    let e = external_error(&[("offset", "0")], none);
    expect(e, "Tensor", "external_data has no `location` entry");
}

#[cfg(unix)]
#[test]
fn fifos_are_refused_without_blocking() {
    let fifo = |_: &Path, dir: &Path| {
        let made = std::process::Command::new("mkfifo")
            .arg(dir.join("pipe.bin"))
            .status();
        if !made.is_ok_and(|s| s.success()) {
            std::fs::create_dir(dir.join("pipe.bin")).unwrap(); // no mkfifo: a folder instead
        }
    };
    let e = external_error(&[("location", "pipe.bin")], fifo);
    expect(e, "ExternalData", "is not a regular file");
}
