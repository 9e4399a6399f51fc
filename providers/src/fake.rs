//! The dry-run provider (stub, being written).
