//! floaty's YAML config (stub, being written).
