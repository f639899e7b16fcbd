//! Integration tests of `parquetrail-synth`: one binary, modules per concern.

mod common;
mod pinned;
mod records;
mod tree;
