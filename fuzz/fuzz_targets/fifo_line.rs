//! The FIFO reader's pure half (`floaty::fifo`): the line splitter over a
//! byte stream and the line parser. The first byte of the input picks how
//! the rest is cut into `read`-sized chunks; the rest is the stream, and
//! also one line on its own. Properties besides "one-line errors": the
//! lines do not depend on the chunking, and none is longer than
//! `MAX_LINE` (the daemon's memory bound).
#![no_main]

use floaty::fifo::parse_line;
use floaty::text::{LineSplitter, Piece, MAX_LINE};
use floaty_fuzz::one_line;
use libfuzzer_sys::fuzz_target;

fn check_line(bytes: &[u8]) {
    if let Err(e) = parse_line(bytes) {
        one_line("FIFO line", &e.to_string());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    check_line(stream);

    let mut whole = LineSplitter::new();
    let expected = whole.push(stream);
    let mut chunked = LineSplitter::new();
    let mut got = Vec::new();
    for chunk in stream.chunks(usize::from(step).max(1)) {
        got.extend(chunked.push(chunk));
    }
    assert_eq!(got, expected, "the lines depend on the chunking");
    assert_eq!(chunked.finish(), whole.finish());

    for piece in &expected {
        if let Piece::Line(line) = piece {
            assert!(line.len() <= MAX_LINE, "a line of {} bytes", line.len());
            check_line(line);
        }
    }
});
