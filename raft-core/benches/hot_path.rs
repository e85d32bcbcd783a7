//! Placeholder until the hot-path bench lands.
fn main() {}
