//! Behaviour tests: every test here runs the built `floaty` binary.
//! One test binary (`autotests = false`) keeps link time down.

mod support;

mod aws;
mod bad_input;
mod digitalocean;
mod exoscale;
mod fail_safe;
mod faults;
mod fifo;
mod health;
mod hetzner;
mod keepalived_conf;
mod lab_script;
mod man_and_completions;
mod notify;
mod pair;
mod processes;
mod reassert;
mod rules;
mod secrets;
mod status;
mod tls;
mod wrappers;
