//! End-to-end tests across crates: the shared corpus and synthetic trees converted by the core,
//! read back by independent engines (DuckDB, pyarrow), reconciled, and exported back losslessly.

mod backfill;
mod compaction;
mod corpus;
mod infra;
mod spark;
mod support;
mod synthetic;
mod verify;
