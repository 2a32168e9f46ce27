//! How one request is run: admitted by the fs layer ([`crate::fs::kernel::admission`]), traced
//! in a span of its own, cancellable by an INTERRUPT ([`super::interrupts`]), its error mapped
//! to an errno, and logged with `-d` once answered ([`crate::request_log`]).

use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use fuse3::raw::Request;
use fuse3::{Errno, Result as FuseResult};
use tracing::{Instrument, debug, debug_span};

use super::interrupts::{InFlight, OnInterrupt};
use crate::fs::kernel::Op;
use crate::fs::{FsError, SshFs};
use crate::request_log::{self, Summary};

/// The errno the kernel is answered for `e`.
pub(super) fn errno(e: FsError) -> Errno {
    Errno::from(e.errno)
}

/// Runs the kernel's requests against the fs layer, and holds those in flight.
pub(super) struct Runner {
    fs: Arc<SshFs>,
    inflight: InFlight,
}

impl Runner {
    /// A runner of requests against `fs`.
    pub(super) fn new(fs: Arc<SshFs>) -> Self {
        Self {
            fs,
            inflight: InFlight::default(),
        }
    }

    /// INTERRUPT of the request `unique` ([`InFlight::interrupt`]).
    pub(super) async fn interrupt(&self, unique: u64) -> FuseResult<()> {
        self.inflight.interrupt(unique).await
    }

    /// Runs one request: traced, cancellable by INTERRUPT (EINTR), errors mapped to errno,
    /// logged with `-d`.
    pub(super) async fn serve<T: Summary>(
        &self,
        req: &Request,
        op: Op,
        ino: u64,
        fut: impl Future<Output = Result<T, FsError>>,
    ) -> FuseResult<T> {
        self.serve_named(req, op, ino, None, fut).await
    }

    /// [`Runner::serve`] for a request about `name` in directory `ino` (named in the log).
    pub(super) async fn serve_named<T: Summary>(
        &self,
        req: &Request,
        op: Op,
        ino: u64,
        name: Option<&OsStr>,
        fut: impl Future<Output = Result<T, FsError>>,
    ) -> FuseResult<T> {
        self.run_request(req, op, ino, name, OnInterrupt::Cancel, fut)
            .await
    }

    /// Runs one request: admitted, traced, errors mapped to errno, logged with `-d`; what an
    /// INTERRUPT does is `on_interrupt`'s.
    pub(super) async fn run_request<T: Summary>(
        &self,
        req: &Request,
        op: Op,
        ino: u64,
        name: Option<&OsStr>,
        on_interrupt: OnInterrupt,
        fut: impl Future<Output = Result<T, FsError>>,
    ) -> FuseResult<T> {
        let started = Instant::now();
        let span = debug_span!(
            "fuse",
            op = op.name(),
            unique = req.unique,
            ino,
            pid = req.pid
        );
        self.fs.admit(req.uid, op).map_err(errno)?;
        let mapped = async {
            fut.await.map_err(|e| {
                debug!(errno = e.errno, "{}", e.message);
                errno(e)
            })
        };
        let result = match on_interrupt {
            OnInterrupt::Cancel => {
                self.inflight
                    .cancellable(req.unique, mapped)
                    .instrument(span)
                    .await
            }
            OnInterrupt::Finish => mapped.instrument(span).await,
        };
        let result = match name {
            Some(name) => result.map_err(|e| self.too_long_or(e, ino, name)),
            None => result,
        };
        self.log(req, op, ino, name, &result, started);
        result
    }

    /// The `-d` line of an answered request ([`request_log`]), outside its span so the line
    /// says everything once.
    fn log<T: Summary>(
        &self,
        req: &Request,
        op: Op,
        ino: u64,
        name: Option<&OsStr>,
        result: &FuseResult<T>,
        started: Instant,
    ) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let result = match result {
                Ok(v) => Ok(v.summary()),
                Err(e) => Err(-libc::c_int::from(*e)),
            };
            let path = self.fs.shown_path(ino);
            let took = started.elapsed();
            debug!(
                "{}",
                request_log::line(req.unique, op.name(), &path, name, result, took)
            );
        }
    }

    /// `e`, or ENAMETOOLONG when `e` is EINVAL and `name` in `parent` is longer than the
    /// server takes (OpenSSH sends its ENAMETOOLONG as BAD_MESSAGE, which reads EINVAL).
    pub(super) fn too_long_or(&self, e: Errno, parent: u64, name: &OsStr) -> Errno {
        if e == Errno::from(libc::EINVAL) && self.fs.too_long_for_the_server(parent, name) {
            Errno::from(libc::ENAMETOOLONG)
        } else {
            e
        }
    }
}
