//! The im2col + GEMM path: per image an NHWC copy, per block of output pixels an im2col matrix
//! times the packed weights of each group, transposed into the NCHW output.

use std::cell::Cell;

use rayon::prelude::*;

use super::layout::{im2col, plane_blocks, scatter, to_nhwc, with_scratch};
use super::params::Geometry;
use super::ConvError;
use crate::kernels::gemm::{
    gemm_packed, packed_len, Activation, Epilogue, Isa, Matrix, MatrixMut, Shape,
};

/// Rows of every block are a multiple of this (of every GEMM micro-kernel's `MR`: 12, 6, 4).
const ROW_UNIT: usize = 12;
/// Floats of a block's im2col matrix (or its `[rows, M]` result): 256 KiB, to stay in L2.
const BLOCK_FLOATS: usize = 64 * 1024;
/// Blocks per thread an image is cut into when it is large enough (rayon balances them).
const BLOCKS_PER_THREAD: usize = 4;

thread_local! {
    /// The NHWC copy of the current image.
    static NHWC: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The im2col matrix of the current block.
    static COL: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The `[rows, M]` GEMM result of the current block.
    static TILE: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// The checked arguments shared by every image.
struct Job<'a> {
    isa: Isa,
    geo: &'a Geometry,
    packed: &'a [f32],
    bias: Option<&'a [f32]>,
    activation: Activation,
    /// 1×1 kernel, stride 1, no padding: the NHWC image is the im2col matrix.
    pointwise: bool,
    /// Output pixels per block.
    rows: usize,
}

/// Runs the GEMM path; `conv2d` has checked every length and that `isa` is available, and
/// `geo.n ≥ 1`.
pub(super) fn run(
    isa: Isa,
    geo: &Geometry,
    x: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
) -> Result<(), ConvError> {
    let pointwise = geo.kh == 1
        && geo.kw == 1
        && geo.sh == 1
        && geo.sw == 1
        && geo.pt == 0
        && geo.pl == 0
        && geo.oh == geo.h
        && geo.ow == geo.w;
    let width = if pointwise {
        geo.m
    } else {
        (geo.g * geo.kg).max(geo.m)
    };
    let pixels = geo.pixels();
    let by_cache = BLOCK_FLOATS / width;
    let by_threads = pixels.div_ceil(rayon::current_num_threads() * BLOCKS_PER_THREAD);
    let rows = by_cache
        .min(by_threads)
        .max(2 * ROW_UNIT)
        .next_multiple_of(ROW_UNIT)
        .min(pixels);
    let job = Job {
        isa,
        geo,
        packed,
        bias,
        activation,
        pointwise,
        rows,
    };
    if geo.n == 1 {
        job.image(x, out)
    } else {
        x.par_chunks(geo.x_image)
            .zip(out.par_chunks_mut(geo.out_image))
            .try_for_each(|(xi, oi)| job.image(xi, oi))
    }
}

impl Job<'_> {
    /// One image: `x` is `[c, h, w]`, `out` is `[m, oh, ow]`.
    fn image(&self, x: &[f32], out: &mut [f32]) -> Result<(), ConvError> {
        let geo = self.geo;
        let pixels = geo.pixels();
        with_scratch(&NHWC, geo.x_image, |nhwc| {
            to_nhwc(x, geo.c, nhwc);
            let nhwc = &*nhwc;
            plane_blocks(out, pixels, self.rows)
                .into_par_iter()
                .enumerate()
                .try_for_each(|(b, mut planes)| {
                    let r0 = b * self.rows;
                    let rows = planes[0].len();
                    with_scratch(&TILE, rows * geo.m, |tile| {
                        if self.pointwise {
                            self.products(&nhwc[r0 * geo.c..], geo.c, geo.cg, rows, tile)?;
                        } else {
                            let kt = geo.g * geo.kg;
                            with_scratch(&COL, rows * kt, |col| {
                                im2col(geo, nhwc, r0, rows, col);
                                self.products(col, kt, geo.kg, rows, tile)
                            })?;
                        }
                        scatter(tile, &mut planes);
                        Ok(())
                    })
                })
        })
    }

    /// `tile [rows, m] = epilogue(A_g · Wᵀ_g)` for every group `g`, where `A_g` starts at
    /// `a[g·group_stride]` with row stride `lda`.
    fn products(
        &self,
        a: &[f32],
        lda: usize,
        group_stride: usize,
        rows: usize,
        tile: &mut [f32],
    ) -> Result<(), ConvError> {
        let (m, mg, kg) = (self.geo.m, self.geo.mg, self.geo.kg);
        let plen = packed_len(kg, mg);
        for g in 0..self.geo.g {
            let ep = Epilogue {
                bias: self.bias.map(|b| &b[g * mg..(g + 1) * mg]),
                activation: self.activation,
                residual: None,
            };
            gemm_packed(
                self.isa,
                Shape {
                    m: rows,
                    n: mg,
                    k: kg,
                },
                Matrix {
                    data: &a[g * group_stride..],
                    stride: lda,
                },
                &self.packed[g * plen..(g + 1) * plen],
                MatrixMut {
                    data: &mut tile[g * mg..],
                    stride: m,
                },
                &ep,
            )?;
        }
        Ok(())
    }
}
