//! Behaviour tests: every test here runs the built `floaty` binary.
//! One test binary (`autotests = false`) keeps link time down.

mod support;

mod bad_input;
mod e2e;
mod exoscale;
mod fail_safe;
mod faults;
mod fifo;
mod fifo_e2e;
mod keepalived_conf;
mod lab;
mod lab_script;
mod many;
mod notify;
mod processes;
mod rules;
mod secrets;
mod split_brain;
mod wrappers;
