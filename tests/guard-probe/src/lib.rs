//! Nothing but the test in `tests/`: see Cargo.toml.
