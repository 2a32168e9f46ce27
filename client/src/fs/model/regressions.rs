//! Named regression cases: each a sequence the model test once shrank a failure to, replayed
//! on the server it failed on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::ops::*;
use super::replay;
use super::server::Fake;

fn must_pass(result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A create, a write, a close, a read back: the smallest case the model knows.
#[test]
fn regression_smoke_write_then_read_back() {
    let rw = OFlags {
        acc: Acc::RW,
        creat: true,
        excl: false,
        trunc: false,
        append: false,
    };
    must_pass(replay(
        Fake::new,
        &[
            Step::new(Op::Open {
                p: 0,
                path: "a",
                flags: rw,
                mode: 0o644,
            }),
            Step::new(Op::Write {
                p: 0,
                fd: 0,
                at: At::Pos,
                len: 5000,
                tag: 1,
            }),
            Step::new(Op::Read {
                p: 0,
                fd: 0,
                at: At::Off(100),
                len: 9000,
                direct: false,
            }),
            Step::new(Op::Close { p: 0, fd: 0 }),
        ],
    ));
}

#[test]
#[ignore]
fn timing_probe() {
    let t = std::time::Instant::now();
    for _ in 0..200 {
        must_pass(replay(Fake::new, &[Step::new(Op::DropCaches)]));
    }
    eprintln!("empty case: {:?}", t.elapsed() / 200);
}
