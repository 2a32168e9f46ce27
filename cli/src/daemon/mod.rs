//! Serving a mount ([`serve`]) and what keeps it running: going to the background
//! ([`detach`]), logging ([`logging`]), the `--flush`/`--stats` socket ([`control`]) and the
//! `-o auto_unmount` watcher ([`auto_unmount`]).

pub mod auto_unmount;
pub mod control;
pub mod detach;
pub mod logging;
pub mod serve;
