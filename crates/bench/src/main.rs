//! drupe-bench (placeholder until the load tool lands).
fn main() {}
