//! Mock cloud APIs (stub, being written).
