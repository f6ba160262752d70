//! GEMM benchmarks on the all-MiniLM-L6-v2 shapes (batch 1 × 128 tokens and batch 8), packed
//! weights, every available kernel family, on 1 and 2 threads. Throughput is in FLOP (2·m·n·k).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kiln_runtime::kernels::gemm::{
    gemm_packed, pack_b, packed_len, Activation, Epilogue, Isa, Matrix, MatrixMut, Shape,
};

/// `(name, m, k, n, activation, residual)`.
const SHAPES: [(&str, usize, usize, usize, Activation, bool); 4] = [
    ("qkv_128x384x384", 128, 384, 384, Activation::None, false),
    (
        "ffn_up_128x384x1536",
        128,
        384,
        1536,
        Activation::GeluErf,
        false,
    ),
    (
        "ffn_down_128x1536x384",
        128,
        1536,
        384,
        Activation::None,
        true,
    ),
    (
        "ffn_up_1024x384x1536",
        1024,
        384,
        1536,
        Activation::GeluErf,
        false,
    ),
];

fn values(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
        .collect()
}

fn bench(c: &mut Criterion) {
    let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
        .into_iter()
        .filter(|isa| isa.available())
        .collect();
    for (name, m, k, n, activation, residual) in SHAPES {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let a = values(m * k);
        let b = values(k * n);
        let bias = values(n);
        let res = values(m * n);
        let mut packed = vec![0.0; packed_len(k, n)];
        pack_b(&b, k, n, &mut packed).expect("pack");
        let ep = Epilogue {
            bias: Some(&bias),
            activation,
            residual: residual.then_some(&res[..]),
        };
        let mut out = vec![0.0; m * n];
        for &isa in &isas {
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("thread pool");
                let id = BenchmarkId::new(format!("{isa:?}"), format!("{threads}t"));
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
                            gemm_packed(isa, Shape { m, n, k }, a, &packed, c, &ep).expect("gemm");
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
