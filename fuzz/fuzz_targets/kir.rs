//! Fuzz target `kir`: the `.kir` text parser. Text that parses must print, parse again, and print
//! to the same text (printing is a fixed point of parse ∘ print).

#![no_main]

use kiln_compiler::text::{parse, print};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(g) = parse(src) else {
        return;
    };
    let text = print(&g).unwrap_or_else(|e| panic!("a parsed graph does not print: {e}"));
    let again = parse(&text)
        .unwrap_or_else(|e| panic!("printed text does not parse: {e}\n--- text ---\n{text}"));
    let text2 = print(&again).unwrap_or_else(|e| panic!("the reparsed graph does not print: {e}"));
    assert_eq!(text, text2, "print → parse → print changed the text");
});
