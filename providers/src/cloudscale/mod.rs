//! cloudscale.ch Floating IPs (stub, being written).
