//! Nothing: the benchmarks are the targets of this package (`cargo bench -p captcha-benches`).
