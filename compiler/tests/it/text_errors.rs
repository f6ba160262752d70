//! Parse errors: a table of malformed documents with the expected line:col and message, limits
//! on hostile input, and a fuzz proptest (random bytes and mutations of a valid document) that
//! only asks `parse` to return instead of panicking.

use kiln_compiler::text::parse;
use kiln_compiler::Error;
use proptest::prelude::*;

/// A valid document; each case below replaces one of its lines (1-based).
const BASE: &str = r#"kir 1
graph {
  input %x: f32[batch, 4]
  weight @0 "w": f32[4, 2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
  %0 = matmul(%x, @0) : f32[batch, 2]
  %1, %2 = split(%0) {axis = 1, sizes = [1, 1]} : f32[batch, 1], f32[batch, 1]
  output "y" = %1
}
"#;

fn with_line(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

fn parse_error(doc: &str) -> (usize, usize, String) {
    match parse(doc) {
        Err(Error::Parse { line, col, message }) => (line, col, message),
        Ok(_) => panic!("parsed without error:\n{doc}"),
        Err(e) => panic!("not a parse error: {e}\n{doc}"),
    }
}

#[test]
fn base_document_is_valid() {
    parse(BASE).unwrap();
}

#[test]
fn malformed_lines_report_line_col_and_message() {
    // (line replaced, its new text, expected line, expected col, message fragment)
    let split_types = ": f32[batch, 1], f32[batch, 1]";
    let cases: Vec<(usize, String, usize, usize, &str)> = vec![
        (5, "  %0 matmul(%x, @0) : f32[batch, 2]".into(), 5, 6, "expected `=` after the result names"),
        (5, "  %0 = matmull(%x, @0) : f32[batch, 2]".into(), 5, 8, "unknown op `matmull`"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1, sizes = [1, 1], keep = true}} {split_types}"), 6, 49, "unknown attribute `keep` for op `split`"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1}} {split_types}"), 6, 12, "op `split` is missing attribute `sizes`"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1, axis = 1, sizes = [1, 1]}} {split_types}"), 6, 33, "duplicate attribute `axis`"),
        (6, format!("  %1, %2 = split(%0) {{axis = true, sizes = [1, 1]}} {split_types}"), 6, 30, "attribute `axis` of op `split` must be an integer, found `true`"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1, sizes = 2}} {split_types}"), 6, 41, "must be a list of dimensions"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1, sizes = [1, seq+]}} {split_types}"), 6, 49, "bad dimension `seq+` in attribute `sizes`"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1 sizes = [1, 1]}} {split_types}"), 6, 32, "expected `,` or `}` after the value of `axis`, found `sizes`"),
        (5, "  %0 = matmul(%y, @0) : f32[batch, 2]".into(), 5, 15, "use of undefined value `%y`"),
        (5, "  %0 = matmul(%x, @1) : f32[batch, 2]".into(), 5, 19, "use of undefined value `@1`"),
        (5, "  %0 = relu(%0) : f32[batch, 2]".into(), 5, 13, "use of undefined value `%0`"),
        (7, "  output \"y\" = %3".into(), 7, 16, "use of undefined value `%3`"),
        (6, format!("  %0, %2 = split(%0) {{axis = 1, sizes = [1, 1]}} {split_types}"), 6, 3, "redefinition of `%0` (first defined on line 5)"),
        (5, "  %x = relu(%x) : f32[batch, 4]".into(), 5, 3, "redefinition of `%x` (first defined on line 3)"),
        (4, "  weight @0 \"w\": f32[1] = [1.0]\n  weight @0 \"v\": f32[1] = [1.0]".into(), 5, 10, "redefinition of `@0`"),
        (6, "  %1 = split(%0) {axis = 1, sizes = [1, 1]} : f32[batch, 1]".into(), 6, 3, "op `split` gives 2 result(s), but 1 name(s)"),
        (6, "  %1, %2 = split(%0) {axis = 1, sizes = [1, 1]} : f32[batch, 1]".into(), 6, 51, "2 result name(s) but 1 type(s)"),
        (3, "  input %x: f33[batch, 4]".into(), 3, 13, "unknown dtype `f33`"),
        (3, "  input %x: f32[batch*, 4]".into(), 3, 23, "bad dimension `batch*`"),
        (3, "  input %x: f32[max(batch,), 4]".into(), 3, 27, "bad dimension `max(batch,)`"),
        (3, "  input %x: f32[batch, 4".into(), 4, 3, "expected `,` or `]` between dimensions"),
        (4, "  weight @0 \"w\": f32[4, 2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]".into(), 4, 30, "the weight's literal has 7 values but f32[4, 2] has 8"),
        (4, "  weight @0 \"w\": f32[4, 2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0.0]".into(), 4, 66, "bad f32 value `8.0.0`"),
        (4, "  weight @0 \"w\": f32[4, 2]".into(), 5, 3, "expected `=` after the weight's type"),
        (5, "  %0 = matmul(%x, @0) : f32[batch, 3]".into(), 5, 25, "declared f32[batch, 3] but matmul gives f32[batch, 2]"),
        (5, "  %0 = matmul(@0, %x) : f32[batch, 2]".into(), 5, 8, "matmul: "),
        (5, "  %0 = relu(%x, %x) : f32[batch, 4]".into(), 5, 8, "op `relu` takes 1 operand(s), found 2"),
        (7, "  output \"y = %1".into(), 7, 10, "unterminated string"),
        (7, "  output \"y\\q\" = %1".into(), 7, 12, "bad escape"),
        (7, "  output y = %1".into(), 7, 10, "expected the output's name as a string"),
        (7, "  output \"y\" = %1\n  output \"y\" = %2".into(), 8, 10, "output \"y\" is declared twice"),
        (7, "  outptu \"y\" = %1".into(), 7, 3, "expected `input`, `weight`, `output`, a node"),
        (7, "".into(), 8, 1, "has-outputs"),
        (8, "} x".into(), 8, 3, "unexpected text after the closing `}`"),
        (8, "}\n}".into(), 9, 1, "unexpected text after the closing `}`"),
        (8, "".into(), 9, 1, "expected `input`, `weight`, `output`, a node (`%0 = ...`) or `}`, found the end of the input"),
        (1, "kir 2".into(), 1, 5, "unsupported format version `2`"),
        (1, "kirr 1".into(), 1, 1, "expected the header `kir 1`"),
        (2, "graph".into(), 3, 3, "expected `{` after `graph`"),
        (3, "  input %x: f32[batch, 4] $".into(), 3, 27, "unexpected character '$'"),
        (3, "  input %1x: f32[batch, 4]".into(), 3, 9, "bad name `%1x`"),
        (3, "  input %: f32[batch, 4]".into(), 3, 9, "expected a name after `%`"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1, sizes = [[[[[[[[[1]]]]]]]]]}} {split_types}"), 6, 49, "nested too deeply"),
        (6, format!("  %1, %2 = split(%0) {{axis = 1, sizes = [1, 2]}} {split_types}"), 6, 12, "split: "),
        (7, "  %3 = range() {start = 0, limit = other, delta = 1, dtype = i64} : i64[other]\n  output \"y\" = %3".into(), 7, 3, "bound-symbols"),
    ];
    let mut failures = Vec::new();
    for (replace, text, line, col, fragment) in cases {
        let doc = with_line(replace, &text);
        let (l, c, msg) = parse_error(&doc);
        if !msg.contains(fragment) || (l, c) != (line, col) {
            failures.push(format!(
                "{text:?}\n  got {l}:{c}: {msg}\n  want {line}:{col}: {fragment}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_inputs_fail_fast() {
    let deep = format!(
        "kir 1\ngraph {{\n  input %x: f32[{}batch]\n}}",
        "(".repeat(100_000)
    );
    assert!(parse_error(&deep).2.contains("bad dimension"));
    let nested = with_line(
        6,
        &format!("  %1, %2 = split(%0) {{sizes = {}}}", "[".repeat(100_000)),
    );
    assert!(parse_error(&nested).2.contains("nested too deeply"));
    let huge = with_line(4, "  weight @0 \"w\": f32[1000000000000, 1000000] = [1.0]");
    assert!(parse_error(&huge).2.contains("1 values but"));
    let overflow = with_line(
        4,
        "  weight @0 \"w\": f32[9223372036854775807, 9223372036854775807] = opaque",
    );
    assert!(parse_error(&overflow).2.contains("too large"));
    let big_int = with_line(6, "  %1, %2 = split(%0) {axis = 99999999999999999999, sizes = [1, 1]} : f32[batch, 1], f32[batch, 1]");
    assert!(parse_error(&big_int).2.contains("must be an integer"));
    let names: Vec<String> = (0..100_000).map(|i| format!("%{i}")).collect();
    let results = with_line(
        5,
        &format!("  {} = relu(%x) : f32[batch, 4]", names.join(", ")),
    );
    assert!(parse_error(&results).2.contains("but 100000 name(s)"));
    let attrs: Vec<String> = (0..100_000).map(|i| format!("a{i} = 1")).collect();
    let attrs = with_line(
        5,
        &format!("  %0 = relu(%x) {{{}}} : f32[batch, 4]", attrs.join(", ")),
    );
    assert!(parse_error(&attrs).2.contains("unknown attribute `a0`"));
    let many = format!(
        "kir 1\ngraph {{\n  input %x: f32[{}]\n}}",
        vec!["1"; 50_000].join(", ")
    );
    assert!(parse_error(&many).2.contains("has-outputs"));
}

/// A valid document using most of the syntax (comments, quoted names, every literal form).
const RICH: &str = r#"kir 1 # header
graph {
  input %"a b": f32[batch, seq, 4]
  input %ids: i64[batch, seq]
  input %mask: bool[batch, seq]
  weight @0 "emb": f16[3, 4] = [0.5, -1.25, nan, inf, -inf, 0.0, -0.0, 1e-5, 65504.0, 2.0, 3.0, 4.0]
  weight @1 "gamma": f32[4] = opaque
  weight @2 "idx": i32[2] = [-7, 2147483647]
  %0 = cast(@0) {to = f32} : f32[3, 4]
  %1 = gather(%0, %ids) {axis = 0} : f32[batch, seq, 4]
  %2 = add(%1, %"a b") : f32[batch, seq, 4]
  %3 = layer_norm(%2, @1) {axis = -1, eps = 1e-5} : f32[batch, seq, 4]
  %4 = concat(%3, %3) {axis = 1} : f32[batch, 2*seq, 4]
  %5, %6 = split(%4) {axis = 1, sizes = [seq+1, seq-1]} : f32[batch, seq+1, 4], f32[batch, seq-1, 4]
  %7 = reshape(%6) {shape = [batch*(seq-1), 4]} : f32[batch*(seq-1), 4]
  %8 = shape_of(%7) {start = 0, end = none} : i64[2]
  %9 = pad(%3) {pads = [0, 0, 0, 0, 0, 1], mode = reflect, value = 0.0} : f32[batch, seq, 5]
  output "out" = %7
  output "shape" = %8
  output "padded" = %9
}
"#;

#[test]
fn rich_document_is_valid() {
    parse(RICH).unwrap();
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    "=",
    ":",
    "%0",
    "@0",
    "\"",
    "\\",
    "#",
    "-",
    "max(",
    "seq",
    "1e400",
    "nan",
    "f32[",
    "\n",
    "é",
    "99999999999999999999",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "0",
    "%\"",
    "{axis = 0}",
    "none",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_documents_never_panic(
        edits in prop::collection::vec((0u8..5, any::<usize>(), any::<u8>()), 1..5),
        rich in any::<bool>(),
    ) {
        let mut doc: Vec<u8> = if rich { RICH } else { BASE }.as_bytes().to_vec();
        for (kind, pos, byte) in edits {
            let at = pos % (doc.len() + 1);
            match kind {
                0 if at < doc.len() => doc[at] = byte,
                1 if at < doc.len() => {
                    doc.remove(at);
                }
                2 => doc.insert(at, byte),
                3 => {
                    let tok = TOKENS[byte as usize % TOKENS.len()].as_bytes();
                    doc.splice(at..at, tok.iter().copied());
                }
                _ => doc.truncate(at),
            }
        }
        let _ = parse(&String::from_utf8_lossy(&doc));
    }
}
