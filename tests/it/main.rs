//! Behaviour tests: every test here runs the built `floaty` binary.
