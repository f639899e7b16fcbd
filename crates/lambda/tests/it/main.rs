//! The Lambda against a real local S3 endpoint (moto_server): every trigger shape through the real
//! handler code path, idempotent re-invocations, partial batch failures naming exactly the bad
//! messages, quarantine objects, reconciled counts — and the built binary under a Runtime API
//! emulator.

mod binary;
mod compaction;
mod corpus;
mod faults;
mod handler;
mod hostile;
mod insights;
mod keys;
mod requests;
mod support;
