//! Reading keepalived.conf the way keepalived does (stub, being written).
