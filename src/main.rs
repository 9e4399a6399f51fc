mod address;
mod config;
mod event;
mod keepalived;

fn main() {}
