//! Building blocks shared by the kernel bodies: typed constants, loads and stores, counted loops
//! (a 4-lane vector loop then a scalar tail), horizontal reductions, runtime calls (lane by lane
//! for vectors) and the inline vector `exp`.
//!
//! Everything is written once for a type `ty` that is either `f32` or `f32x4`, so the vector body
//! and the scalar tail of a loop come from the same code.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4, I64};
use cranelift_codegen::ir::{Endianness, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use kiln_runtime::kernels::numerics::{
    EXP_POLY, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC, ROUND_MAGIC_BITS,
};

/// Vector lanes in the main loops (Cranelift vectors are 128-bit).
pub(crate) const LANES: i64 = 4;

/// A runtime function the generated code calls (see `kiln_runtime::code::symbols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum RtFn {
    Log,
    Tanh,
    Erf,
    Pow,
    Sin,
    Cos,
}

impl RtFn {
    /// The imported symbol.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            RtFn::Log => "kiln_rt_logf",
            RtFn::Tanh => "kiln_rt_tanhf",
            RtFn::Erf => "kiln_rt_erff",
            RtFn::Pow => "kiln_rt_powf",
            RtFn::Sin => "kiln_rt_sinf",
            RtFn::Cos => "kiln_rt_cosf",
        }
    }

    /// How many f32 arguments it takes.
    pub(crate) fn arity(self) -> usize {
        if self == RtFn::Pow {
            2
        } else {
            1
        }
    }
}

/// The function being built, with the runtime functions it imported and the target's options.
pub(crate) struct Emit<'a, 'f> {
    /// The Cranelift builder.
    pub b: &'a mut FunctionBuilder<'f>,
    /// The imported runtime functions.
    pub rt: &'a HashMap<RtFn, FuncRef>,
    /// Whether the target has FMA (use `fma` for multiply-adds).
    pub fma: bool,
}

/// Loads and stores never trap (the caller guarantees valid buffers) and may be unaligned.
fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl Emit<'_, '_> {
    /// The constant `v` as `ty` (splatted for vectors).
    pub(crate) fn fconst(&mut self, ty: Type, v: f32) -> Value {
        let s = self.b.ins().f32const(v);
        self.splat(ty, s)
    }

    /// The f32 scalar `s` as `ty` (splatted for vectors).
    pub(crate) fn splat(&mut self, ty: Type, s: Value) -> Value {
        if ty.is_vector() {
            self.b.ins().splat(ty, s)
        } else {
            s
        }
    }

    /// The i32 constant `v` as the integer type matching `ty`.
    fn iconst32(&mut self, ty: Type, v: i32) -> Value {
        let s = self.b.ins().iconst(I32, i64::from(v));
        if ty.is_vector() {
            self.b.ins().splat(I32X4, s)
        } else {
            s
        }
    }

    /// Reinterprets the bits of `v` as `to` (`f32 ↔ i32`, `f32x4 ↔ i32x4`).
    fn bitcast(&mut self, to: Type, v: Value) -> Value {
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(to, flags, v)
    }

    /// `a < b ? then : other`, lane-wise (false when either side is NaN).
    pub(crate) fn select_lt(
        &mut self,
        ty: Type,
        a: Value,
        b: Value,
        then: Value,
        other: Value,
    ) -> Value {
        let less = self.b.ins().fcmp(FloatCC::LessThan, a, b);
        if ty.is_vector() {
            let mask = self.bitcast(ty, less);
            self.b.ins().bitselect(mask, then, other)
        } else {
            self.b.ins().select(less, then, other)
        }
    }

    /// `x` clamped to `[lo, hi]`, NaN staying NaN. Written as selects in the operand order that
    /// x86 `maxps`/`minps` implement, so vectors take one instruction each (CLIF `fmax`/`fmin`
    /// need about seven for their ±0 and NaN rules).
    pub(crate) fn clamp(&mut self, ty: Type, x: Value, lo: Value, hi: Value) -> Value {
        let x = self.select_lt(ty, x, lo, lo, x);
        self.select_lt(ty, hi, x, hi, x)
    }

    /// `a·b + c`, fused when the target has FMA.
    pub(crate) fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    /// Loads a `ty` from `base + offset` (byte offset).
    pub(crate) fn load(&mut self, ty: Type, base: Value, offset: Value) -> Value {
        let addr = self.b.ins().iadd(base, offset);
        self.b.ins().load(ty, mem(), addr, 0)
    }

    /// Stores `v` at `base + offset` (byte offset).
    pub(crate) fn store(&mut self, v: Value, base: Value, offset: Value) {
        let addr = self.b.ins().iadd(base, offset);
        self.b.ins().store(mem(), v, addr, 0);
    }

    /// The byte offset of f32 element `index`.
    pub(crate) fn f32_offset(&mut self, index: Value) -> Value {
        let two = self.b.ins().iconst(I64, 2);
        self.b.ins().ishl(index, two)
    }

    /// `for (i = start; i + step <= n; i += step) body(i)`; returns the index after the loop.
    pub(crate) fn counted_loop(
        &mut self,
        start: Value,
        n: Value,
        step: i64,
        mut body: impl FnMut(&mut Self, Value),
    ) -> Value {
        let var = self.b.declare_var(I64);
        self.b.def_var(var, start);
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        let step = self.b.ins().iconst(I64, step);
        let next = self.b.ins().iadd(i, step);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, n);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        self.b.seal_block(body_block);
        body(self, i);
        self.b.def_var(var, next);
        self.b.ins().jump(header, &[]);
        self.b.seal_block(header);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        self.b.use_var(var)
    }

    /// Runs `body(ty, c)` over `c` in `0..n`: 4 lanes at a time as `f32x4`, then the remaining
    /// elements one at a time as `f32`.
    pub(crate) fn vector_then_scalar(
        &mut self,
        n: Value,
        mut body: impl FnMut(&mut Self, Type, Value),
    ) {
        let zero = self.b.ins().iconst(I64, 0);
        let end = self.counted_loop(zero, n, LANES, |e, c| body(e, F32X4, c));
        self.counted_loop(end, n, 1, |e, c| body(e, F32, c));
    }

    /// The sum of the lanes of an `f32x4`.
    pub(crate) fn hsum(&mut self, v: Value) -> Value {
        let l: Vec<Value> = (0..4u8).map(|i| self.b.ins().extractlane(v, i)).collect();
        let a = self.b.ins().fadd(l[0], l[1]);
        let b = self.b.ins().fadd(l[2], l[3]);
        self.b.ins().fadd(a, b)
    }

    /// The largest lane of an `f32x4` (NaN if any lane is NaN).
    pub(crate) fn hmax(&mut self, v: Value) -> Value {
        let l: Vec<Value> = (0..4u8).map(|i| self.b.ins().extractlane(v, i)).collect();
        let a = self.b.ins().fmax(l[0], l[1]);
        let b = self.b.ins().fmax(l[2], l[3]);
        self.b.ins().fmax(a, b)
    }

    /// Calls runtime function `f` on `args` (all of type `ty`); vectors are split into lanes,
    /// one call per lane.
    pub(crate) fn call(&mut self, ty: Type, f: RtFn, args: &[Value]) -> Value {
        let fref = self.rt[&f];
        if !ty.is_vector() {
            let inst = self.b.ins().call(fref, args);
            return self.b.inst_results(inst)[0];
        }
        let mut out = None;
        for lane in 0..4u8 {
            let lane_args: Vec<Value> = args
                .iter()
                .map(|&a| self.b.ins().extractlane(a, lane))
                .collect();
            let inst = self.b.ins().call(fref, &lane_args);
            let r = self.b.inst_results(inst)[0];
            out = Some(match out {
                None => self.b.ins().splat(F32X4, r),
                Some(v) => self.b.ins().insertlane(v, r, lane),
            });
        }
        out.unwrap_or_else(|| unreachable!("four lanes"))
    }

    /// `e^x` inline, for `f32` or `f32x4`: `x = n·ln2 + r` with `|r| ≤ ln2/2` (Cody–Waite
    /// split of ln2), a degree-7 polynomial for `e^r` (Cephes `expf`, about 1 ulp), and `2^n`
    /// built from exponent bits in two halves so results that overflow, underflow or are
    /// subnormal come out right. `x` is clamped to [-104, 89] first (beyond which the result is
    /// 0 or ∞ anyway); NaN propagates.
    pub(crate) fn exp(&mut self, ty: Type, x: Value) -> Value {
        let ity = if ty.is_vector() { I32X4 } else { I32 };
        let lo = self.fconst(ty, -104.0);
        let hi = self.fconst(ty, 89.0);
        let x = self.clamp(ty, x, lo, hi);
        // n = round(x·log2 e) via the 1.5·2²³ trick: t's low mantissa bits hold n.
        let magic = self.fconst(ty, ROUND_MAGIC);
        let log2e = self.fconst(ty, LOG2E);
        let t = self.mul_add(x, log2e, magic);
        let n = self.b.ins().fsub(t, magic);
        let c1 = self.fconst(ty, -LN2_HI); // -355/512 exactly: n·c1 is exact
        let c2 = self.fconst(ty, -LN2_LO);
        let r = self.mul_add(n, c1, x);
        let r = self.mul_add(n, c2, r);
        let mut p = self.fconst(ty, EXP_POLY[0]);
        for c in EXP_POLY[1..].iter().copied() {
            let c = self.fconst(ty, c);
            p = self.mul_add(p, r, c);
        }
        let r2 = self.b.ins().fmul(r, r);
        let one = self.fconst(ty, 1.0);
        let r1 = self.b.ins().fadd(r, one);
        let y = self.mul_add(p, r2, r1);
        // 2^n = 2^h · 2^(n-h) with h = n >> 1, each half a normal power of two.
        let tbits = self.bitcast(ity, t);
        let magic_bits = self.iconst32(ty, ROUND_MAGIC_BITS);
        let ni = self.b.ins().isub(tbits, magic_bits);
        let one_bit = self.b.ins().iconst(I32, 1);
        let h = self.b.ins().sshr(ni, one_bit);
        let rest = self.b.ins().isub(ni, h);
        let bias = self.iconst32(ty, 127);
        let mantissa_bits = self.b.ins().iconst(I32, 23);
        let mut scaled = y;
        for half in [h, rest] {
            let e = self.b.ins().iadd(half, bias);
            let e = self.b.ins().ishl(e, mantissa_bits);
            let s = self.bitcast(ty, e);
            scaled = self.b.ins().fmul(scaled, s);
        }
        scaled
    }

    /// `1 / (1 + e^-x)`.
    pub(crate) fn sigmoid(&mut self, ty: Type, x: Value) -> Value {
        let neg = self.b.ins().fneg(x);
        let e = self.exp(ty, neg);
        let one = self.fconst(ty, 1.0);
        let d = self.b.ins().fadd(one, e);
        self.b.ins().fdiv(one, d)
    }
}
