//! Products over block-quantized weights (`kernels::blocks`) beside the packed f32 GEMM on the
//! same shapes: SmolLM2-135M's MLP projections for one decode row and a 300-token prefill, the
//! current ISA, 1 and 2 threads. Throughput is in FLOP (2·m·n·k).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kiln_runtime::kernels::blocks::{blocks_len, gemm_blocks, BlockFormat};
use kiln_runtime::kernels::gemm::{
    gemm_packed, pack_b, packed_len, Epilogue, Isa, Matrix, MatrixMut, Shape,
};

/// `(name, m, k, n)`.
const SHAPES: [(&str, usize, usize, usize); 4] = [
    ("decode_up_1x576x1536", 1, 576, 1536),
    ("decode_down_1x1536x576", 1, 1536, 576),
    ("prefill_up_300x576x1536", 300, 576, 1536),
    ("prefill_down_300x1536x576", 300, 1536, 576),
];

fn values(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
        .collect()
}

/// `n` rows of `k / 32` Q4_1 blocks: scale 0.01, minimum −0.08, quants cycling through 0..16.
fn q4_1(n: usize, k: usize) -> Vec<u8> {
    let len = blocks_len(BlockFormat::Q4_1, k, n).expect("whole blocks");
    let mut w = vec![0u8; len];
    for (i, blk) in w.chunks_exact_mut(20).enumerate() {
        blk[..2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        blk[2..4].copy_from_slice(&half::f16::from_f32(-0.08).to_le_bytes());
        for (j, q) in blk[4..].iter_mut().enumerate() {
            *q = ((i * 31 + j * 7) % 256) as u8;
        }
    }
    w
}

fn bench(c: &mut Criterion) {
    let isa = Isa::detect();
    for (name, m, k, n) in SHAPES {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let a = values(m * k);
        let w = q4_1(n, k);
        let mut wf = vec![0f32; n * k];
        BlockFormat::Q4_1.dequantize(&w, &mut wf);
        // Bᵀ = W: pack B = Wᵀ (k × n).
        let mut b = vec![0f32; k * n];
        for (j, row) in wf.chunks_exact(k).enumerate() {
            for (p, &x) in row.iter().enumerate() {
                b[p * n + j] = x;
            }
        }
        let mut packed = vec![0.0; packed_len(k, n)];
        pack_b(&b, k, n, &mut packed).expect("pack");
        let ep = Epilogue::default();
        let mut out = vec![0.0; m * n];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            for kind in ["f32_packed", "q4_1_blocks"] {
                let id = BenchmarkId::new(format!("{isa:?}/{kind}"), format!("{threads}t"));
                group.bench_function(id, |bencher| {
                    pool.install(|| {
                        bencher.iter(|| {
                            let a = Matrix {
                                data: &a,
                                stride: k,
                            };
                            let c = MatrixMut {
                                data: &mut out,
                                stride: n,
                            };
                            let shape = Shape { m, n, k };
                            if kind == "f32_packed" {
                                gemm_packed(isa, shape, a, &packed, c, &ep).expect("gemm");
                            } else {
                                gemm_blocks(isa, shape, a, &w, BlockFormat::Q4_1, c, &ep)
                                    .expect("gemm");
                            }
                            black_box(&out);
                        })
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
