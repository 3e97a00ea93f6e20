//! The crate's tests over real sockets live in `tests/`; this library holds the README's code,
//! compiled and run as doc tests. It is not published.

/// The README's code blocks, compiled as doctests so they stay true (the `rust` ones run).
/// They hold no hidden `# ` lines: a reader copies exactly what compiles here. Its snippets use
/// the `axum` feature, the emulator crate, and the dev-dependencies for the crates they name.
#[doc = include_str!("../README.md")]
///
/// And the README keeps it so:
///
/// ```
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
/// let readme = std::fs::read_to_string(path).unwrap();
/// let mut in_rust = false;
/// for (n, line) in readme.lines().enumerate() {
///     let line = line.trim_start();
///     if line.starts_with("```") {
///         in_rust = line.starts_with("```rust");
///     } else if in_rust {
///         assert!(line != "#" && !line.starts_with("# "), "README.md:{}: a hidden line", n + 1);
///     }
/// }
/// ```
pub struct ReadmeDoctests;
