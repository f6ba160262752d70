//! Numbers in IR text and weight literals: shortest round-trip float formatting, number syntax,
//! and the flat row-major `[...]` lists of a weight's values.

use super::lexer::{Lexer, Tok};
use crate::error::Result;
use crate::ir::Weight;
pub(crate) use kiln_runtime::ops::fmt_f64;
use kiln_runtime::{bf16, f16, DType, TensorData};

/// An f32 in IR text (see [`fmt_f64`]).
pub(crate) fn fmt_f32(x: f32) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        fmt_f64(f64::from(x))
    }
}

fn digits(t: &str) -> usize {
    t.bytes().take_while(u8::is_ascii_digit).count()
}

/// `-?[0-9]+`.
pub(crate) fn is_int_syntax(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    !t.is_empty() && digits(t) == t.len()
}

/// `-?[0-9]+(.[0-9]*)?([eE][+-]?[0-9]+)?`.
fn is_float_syntax(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let n = digits(t);
    if n == 0 {
        return false;
    }
    let mut rest = &t[n..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = &r[digits(r)..];
    }
    if let Some(r) = rest.strip_prefix(['e', 'E']) {
        let r = r.strip_prefix(['+', '-']).unwrap_or(r);
        let n = digits(r);
        if n == 0 {
            return false;
        }
        rest = &r[n..];
    }
    rest.is_empty()
}

/// An integer literal.
pub(crate) fn parse_i64(t: &str) -> Option<i64> {
    if is_int_syntax(t) {
        t.parse().ok()
    } else {
        None
    }
}

/// A float literal: decimal/exponent syntax, `nan`, `inf` or `-inf`.
pub(crate) fn parse_f64(t: &str) -> Option<f64> {
    match t {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ if is_float_syntax(t) => t.parse().ok(),
        _ => None,
    }
}

/// An f32 literal, rounded once from the decimal text.
fn parse_f32(t: &str) -> Option<f32> {
    match t {
        "nan" | "inf" | "-inf" => parse_f64(t).map(|x| x as f32),
        _ if is_float_syntax(t) => t.parse().ok(),
        _ => None,
    }
}

/// Writes a weight's values as `[v, v, ...]`, or `opaque` when it has no data.
pub(crate) fn write_literal(out: &mut String, w: &Weight) -> Result<()> {
    if w.bytes().is_none() {
        out.push_str("opaque");
        return Ok(());
    }
    let t = w.to_tensor()?;
    fn join<T>(v: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
        v.iter().map(f).collect()
    }
    let items = match t.data() {
        TensorData::F32(v) => join(v, |x| fmt_f32(*x)),
        TensorData::F16(v) => join(v, |x| fmt_f32(x.to_f32())),
        TensorData::BF16(v) => join(v, |x| fmt_f32(x.to_f32())),
        TensorData::F64(v) => join(v, |x| fmt_f64(*x)),
        TensorData::I64(v) => join(v, i64::to_string),
        TensorData::I32(v) => join(v, i32::to_string),
        TensorData::I8(v) => join(v, i8::to_string),
        TensorData::U8(v) => join(v, u8::to_string),
        TensorData::I16(v) => join(v, i16::to_string),
        TensorData::U16(v) => join(v, u16::to_string),
        TensorData::U32(v) => join(v, u32::to_string),
        TensorData::U64(v) => join(v, u64::to_string),
        TensorData::Bool(v) => join(v, bool::to_string),
    };
    out.push('[');
    out.push_str(&items.join(", "));
    out.push(']');
    Ok(())
}

/// Appends one element, given as text, to little-endian bytes of `dtype`; fails with a message
/// when the text is not a value of that dtype.
fn push_element(t: &str, dtype: DType, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let bad = || format!("bad {dtype} value `{t}`");
    let int = || -> std::result::Result<i64, String> { parse_i64(t).ok_or_else(bad) };
    let range = |v: i64| format!("value {v} is out of range for {dtype}");
    match dtype {
        DType::F32 => out.extend(parse_f32(t).ok_or_else(bad)?.to_le_bytes()),
        DType::F64 => out.extend(parse_f64(t).ok_or_else(bad)?.to_le_bytes()),
        DType::F16 => out.extend(f16::from_f64(parse_f64(t).ok_or_else(bad)?).to_le_bytes()),
        DType::BF16 => out.extend(bf16::from_f64(parse_f64(t).ok_or_else(bad)?).to_le_bytes()),
        DType::I64 => out.extend(int()?.to_le_bytes()),
        DType::I32 => {
            let v = int()?;
            out.extend(i32::try_from(v).map_err(|_| range(v))?.to_le_bytes());
        }
        DType::I8 => {
            let v = int()?;
            out.extend(i8::try_from(v).map_err(|_| range(v))?.to_le_bytes());
        }
        DType::U8 => {
            let v = int()?;
            out.push(u8::try_from(v).map_err(|_| range(v))?);
        }
        DType::I16 => {
            let v = int()?;
            out.extend(i16::try_from(v).map_err(|_| range(v))?.to_le_bytes());
        }
        DType::U16 => {
            let v = int()?;
            out.extend(u16::try_from(v).map_err(|_| range(v))?.to_le_bytes());
        }
        DType::U32 => {
            let v = int()?;
            out.extend(u32::try_from(v).map_err(|_| range(v))?.to_le_bytes());
        }
        DType::U64 => out.extend(t.parse::<u64>().map_err(|_| bad())?.to_le_bytes()),
        DType::Bool => match t {
            "true" => out.push(1),
            "false" => out.push(0),
            _ => return Err(format!("bad bool value `{t}` (expected `true` or `false`)")),
        },
    }
    Ok(())
}

/// Parses `[v, v, ...]` holding exactly `numel` values of `dtype` (`ty` names the type in
/// messages) into little-endian bytes. Never allocates more than the text can fill.
pub(crate) fn parse_literal(
    lx: &mut Lexer<'_>,
    dtype: DType,
    numel: usize,
    ty: &str,
) -> Result<Vec<u8>> {
    let open = lx.expect('[', "or `opaque` for the weight's values")?;
    let cap = numel.saturating_mul(dtype.size()).min(1 << 16);
    let mut bytes = Vec::with_capacity(cap);
    let mut count = 0usize;
    if !lx.eat(']')? {
        loop {
            let t = lx.next()?;
            let end = match &t.tok {
                Tok::Number | Tok::Ident(_) => t.end,
                Tok::Punct('-') if matches!(lx.peek()?.tok, Tok::Ident(_)) => lx.next()?.end,
                other => {
                    let msg = format!("expected a {dtype} value, found {other}");
                    return Err(lx.src.err(t.start, msg));
                }
            };
            count += 1;
            if count <= numel {
                let text: String = lx.text(t.start, end).split_whitespace().collect();
                push_element(&text, dtype, &mut bytes).map_err(|m| lx.src.err(t.start, m))?;
            }
            if lx.eat(']')? {
                break;
            }
            lx.expect(',', "or `]` between the weight's values")?;
        }
    }
    if count != numel {
        let msg = format!("the weight's literal has {count} values but {ty} has {numel}");
        return Err(lx.src.err(open.start, msg));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_through_text() {
        for x in [0.5f64, -1.25, 1e-5, 1e300, 0.1, -0.0, 123456789.0] {
            assert_eq!(parse_f64(&fmt_f64(x)).map(f64::to_bits), Some(x.to_bits()));
        }
        for x in [0.1f32, 1e-40, f32::MAX, -3.5] {
            assert_eq!(parse_f32(&fmt_f32(x)).map(f32::to_bits), Some(x.to_bits()));
        }
        assert_eq!(fmt_f64(f64::NAN), "nan");
        assert_eq!(fmt_f32(f32::NEG_INFINITY), "-inf");
        assert!(parse_f64("nan").is_some_and(f64::is_nan));
    }

    #[test]
    fn number_syntax_is_strict() {
        for good in ["1", "-1", "1.", "1.5", "1e5", "-1.5E-3", "0"] {
            assert!(parse_f64(good).is_some(), "{good}");
        }
        for bad in [
            "", "-", ".5", "1e", "1x", "1.2.3", "infinity", "NaN", "+1", "1e+",
        ] {
            assert!(parse_f64(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_i64("-12"), Some(-12));
        assert_eq!(parse_i64("99999999999999999999"), None);
        assert_eq!(parse_i64("1.0"), None);
    }

    #[test]
    fn elements_check_their_dtype_range() {
        let mut out = Vec::new();
        assert!(push_element("300", DType::U8, &mut out).is_err());
        assert!(push_element("-1", DType::I8, &mut out).is_ok());
        assert!(push_element("1.5", DType::I32, &mut out).is_err());
        assert!(push_element("1", DType::Bool, &mut out).is_err());
        assert!(push_element("true", DType::Bool, &mut out).is_ok());
        assert_eq!(out, vec![0xff, 1]);
    }
}
