//! The tests that need root: a real keepalived pair in two network
//! namespaces (`lab.rs`, the harness the try-it lab shares), driving floaty
//! through failovers. Each is reported as ignored where the build found no
//! root, keepalived or `ip` (build.rs); CI runs them all.

pub mod e2e;
pub mod fifo_e2e;
mod health;
pub mod lab;
mod many;
mod partition;
mod split_brain;
mod status;
