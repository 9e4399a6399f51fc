//! The notify-call arguments: keepalived runs `floaty CONFIG TYPE NAME
//! STATE [PRIORITY]`. The input is argv after `floaty`, words separated by
//! NUL (which no argument can hold). All of it goes through the command
//! line as `main` parses it (Go-style flag rewriting, clap, then
//! `RawArgs::into_command`); three or four UTF-8 words also go to the event
//! parser (`Event::from_args`) directly.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::Parser;
use floaty::cli::{clap_error_line, normalize_go_flags, RawArgs};
use floaty::error::Error;
use floaty::event::Event;
use floaty_fuzz::one_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let words: Vec<&[u8]> = data.split(|b| *b == 0).collect();

    if let Ok(text) = words
        .iter()
        .map(|w| std::str::from_utf8(w))
        .collect::<Result<Vec<&str>, _>>()
    {
        if let [kind, name, state, priority @ ..] = text.as_slice() {
            if priority.len() <= 1 {
                if let Err(e) = Event::from_args(kind, name, state, priority.first().copied()) {
                    one_line("notify arguments", &e.to_string());
                }
            }
        }
    }

    let argv = std::iter::once(OsString::from("floaty"))
        .chain(words.iter().map(|w| OsString::from_vec(w.to_vec())));
    match RawArgs::try_parse_from(normalize_go_flags(argv)) {
        Ok(raw) => {
            let _ = raw.options();
            if let Err(e) = raw.into_command() {
                // As main prints it.
                one_line("command line", &format!("{:#}", Error::from(e)));
            }
        }
        // --help and --version go to stdout as clap renders them.
        Err(e) if !e.use_stderr() => {}
        // As main prints clap's errors: one line.
        Err(e) => one_line("command line", &clap_error_line(&e).to_string()),
    }
});
