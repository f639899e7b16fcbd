//! Integration tests of `parquetrail-synth`: one binary, modules per concern.

mod common;
mod records;
mod tree;
