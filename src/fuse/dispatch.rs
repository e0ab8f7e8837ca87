//! The adapter's state and its one way of serving a request: pick the filesystem, run the work
//! as a task, reply, and log every failure with its errno.

use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fuser::{FileHandle, FopenFlags, Generation, ReplyEntry, Request};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::reply::{ErrorReply, failed, name_str, to_attr};
use super::{EMPTY_DIR, LOCAL_BITS};
use crate::fs::{Fs, FsError, FsResult, Stat};
use crate::resolver::FsResolver;

/// The caller's filesystem and its slot, once known (see [`FuseAdapter::fs`]).
pub(super) type FsFor = BoxFuture<'static, FsResult<(u16, Arc<Fs>)>>;

/// Identities opened at once at most. Opening one (a user's first access in a multi-user mount)
/// reads their token store and builds their clients: CPU work that, 49 users at once on 2 cores,
/// held all 4 FUSE workers while an active user's read waited up to 35.7 ms (47x its idle p99).
const OPENING_AT_ONCE: usize = 2;

pub struct FuseAdapter {
    pub(super) resolver: Arc<dyn FsResolver>,
    rt: tokio::runtime::Handle,
    opening: Arc<tokio::sync::Semaphore>,
}

impl FuseAdapter {
    pub fn new(resolver: Arc<dyn FsResolver>, rt: tokio::runtime::Handle) -> Self {
        FuseAdapter { resolver, rt, opening: Arc::new(tokio::sync::Semaphore::new(OPENING_AT_ONCE)) }
    }

    pub(super) fn ttl(&self) -> Duration {
        self.resolver.ttl()
    }

    /// The caller's filesystem and its slot: at once when it is open; otherwise it is opened on the
    /// runtime's blocking threads, `OPENING_AT_ONCE` at a time, so a FUSE worker never waits for
    /// it and every other user's requests keep being dispatched.
    pub(super) fn fs(&self, req: &Request) -> FsFor {
        let (uid, gid) = (req.uid(), req.gid());
        if let Some(now) = self.resolver.for_uid_now(uid, gid) {
            return futures::future::ready(now).boxed();
        }
        let (resolver, opening) = (self.resolver.clone(), self.opening.clone());
        async move {
            let _turn = opening.acquire_owned().await;
            tokio::task::spawn_blocking(move || resolver.for_uid(uid, gid)).await.unwrap_or_else(|e| {
                Err(FsError::Io(Arc::new(std::io::Error::other(format!("opening uid {uid}: {e}")))))
            })
        }
        .boxed()
    }

    /// The caller's filesystem (as [`FuseAdapter::fs`]) and a name from the kernel, checked.
    pub(super) fn fs_and_name(&self, req: &Request, name: &OsStr) -> FsResult<(FsFor, String)> {
        let name = name_str(name)?;
        Ok((self.fs(req), name))
    }

    /// The filesystem that issued `fh`, and the handle as that filesystem knows it.
    pub(super) fn fs_of_handle(&self, fh: FileHandle) -> FsResult<(Arc<Fs>, u64)> {
        let slot = (fh.0 >> LOCAL_BITS) as u16;
        let fs = self.resolver.for_slot(slot).ok_or(FsError::BadHandle)?;
        Ok((fs, fh.0 & ((1 << LOCAL_BITS) - 1)))
    }

    pub(super) fn open_flags(&self) -> FopenFlags {
        if self.resolver.direct_io() { FopenFlags::FOPEN_DIRECT_IO } else { FopenFlags::empty() }
    }

    /// Serves one request: `work` (already bound to its filesystem, or the error that prevented
    /// that) runs on the runtime and `done` replies with its result. Every failure is replied as its
    /// errno and logged once ([`reply::failed`]).
    pub(super) fn serve<R, T, W>(
        &self,
        op: &'static str,
        reply: R,
        work: FsResult<W>,
        done: impl FnOnce(R, T) + Send + 'static,
    ) where
        R: ErrorReply,
        T: Send + 'static,
        W: Future<Output = FsResult<T>> + Send + 'static,
    {
        let work = match work {
            Ok(work) => work,
            Err(e) => return reply.fail(failed(op, &e)),
        };
        let task = async move {
            match work.await {
                Ok(value) => {
                    crate::metrics::series::fuse_op(op, 0);
                    done(reply, value)
                }
                Err(e) => reply.fail(failed(op, &e)),
            }
        };
        self.run(task);
    }

    /// Runs `task` on this FUSE worker until it would wait, then on the runtime. Most requests
    /// never wait (a lookup or getattr answered from memory, a create, a release with nothing to
    /// upload): they are answered here, without a task's two thread wake-ups. A create-write-close
    /// of a 4 KiB file is five requests; with each a task, the mount spent 0.94 ms of CPU per file
    /// (a quarter of its samples in the scheduler), 0.73 ms with this (bench item 5, medians of 5).
    fn run(&self, task: impl Future<Output = ()> + Send + 'static) {
        let _runtime = self.rt.enter();
        if let Some(waits) = poll_here(Box::pin(task)) {
            self.rt.spawn(waits);
        }
    }

    /// [`FuseAdapter::serve`] for requests answered with a new entry (lookup, mkdir, symlink,
    /// mknod): the filesystem has counted the kernel's reference.
    pub(super) fn serve_entry<W>(&self, op: &'static str, reply: ReplyEntry, work: FsResult<W>)
    where
        W: Future<Output = FsResult<Stat>> + Send + 'static,
    {
        let ttl = self.ttl();
        self.serve(op, reply, work, move |r, stat: Stat| r.entry(&ttl, &to_attr(&stat), Generation(0)));
    }
}

/// Polls `task` once on this thread; `Some(task)` when it would wait. A future polled once with a
/// waker that does nothing, then by the runtime, is polled again at once there and registers the
/// runtime's waker: whatever it waits on wakes that. A panic in it is caught here, as the runtime
/// catches a task's, so a FUSE worker never unwinds: the request's reply, dropped unsent, answers
/// EIO.
fn poll_here<F: Future<Output = ()> + ?Sized>(mut task: std::pin::Pin<Box<F>>) -> Option<std::pin::Pin<Box<F>>> {
    let mut here = std::task::Context::from_waker(std::task::Waker::noop());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.as_mut().poll(&mut here))) {
        Ok(std::task::Poll::Ready(())) => None,
        Ok(std::task::Poll::Pending) => Some(task),
        Err(_) => {
            tracing::error!("a request panicked (a bug in ssofs); it is answered with EIO");
            None
        }
    }
}

pub(super) fn handle(slot: u16, local: u64) -> FileHandle {
    FileHandle(((slot as u64) << LOCAL_BITS) | local)
}

impl FuseAdapter {
    /// The entries a directory handle holds (none for the empty root of a user without login).
    pub(super) fn dir_snapshot(&self, fh: FileHandle) -> FsResult<Arc<Vec<crate::fs::DirEntry>>> {
        if fh.0 == EMPTY_DIR {
            return Ok(Arc::default());
        }
        let (fs, local) = self.fs_of_handle(fh)?;
        fs.dir_entries(local).ok_or(FsError::BadHandle)
    }
}

#[cfg(test)]
mod tests {
    use super::poll_here;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_request_that_panics_on_the_worker_is_dropped_not_unwound() {
        let dropped = Arc::new(AtomicBool::new(false));
        struct Reply(Arc<AtomicBool>);
        impl Drop for Reply {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let reply = Reply(dropped.clone());
        let task = Box::pin(async move {
            let _reply = reply;
            panic!("a bug in a request");
        });
        assert!(poll_here(task).is_none(), "nothing left to run");
        assert!(dropped.load(Ordering::SeqCst), "the reply was dropped (fuser answers EIO)");
    }

    #[tokio::test]
    async fn a_request_that_waits_is_handed_on_and_finishes_on_the_runtime() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let task = Box::pin(async move {
            rx.await.unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        let waits = poll_here(task).expect("it waits for the channel");
        let handle = tokio::spawn(waits);
        tx.send(()).unwrap();
        handle.await.unwrap();
        assert!(done.load(Ordering::SeqCst));
        assert!(poll_here(Box::pin(async {})).is_none(), "a request with nothing to wait for ends here");
    }
}
