//! A client that blocks (PostgreSQL's, an HTTP client's) on a thread of its own: each runs a
//! runtime of its own, which cannot run inside the broker's. Calls queue on the thread in order
//! and the caller waits for its answer.

use std::sync::mpsc;

type Job<C> = Box<dyn FnOnce(&mut C) + Send>;

pub(crate) struct Worker<C> {
    jobs: mpsc::Sender<Job<C>>,
}

/// The worker's thread stopped (it panicked): nothing more can be done through it.
#[derive(Debug)]
pub(crate) struct Stopped;

impl<C: 'static> Worker<C> {
    /// Start a thread named `name` that makes its client with `open`, and hand back what
    /// `open` failed with, if it did.
    pub(crate) fn start<E: Send + 'static>(
        name: &str,
        open: impl FnOnce() -> Result<C, E> + Send + 'static,
    ) -> std::io::Result<Result<Worker<C>, E>> {
        let (jobs, queue) = mpsc::channel::<Job<C>>();
        let (opened, ready) = mpsc::channel();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let mut client = match open() {
                Ok(client) => client,
                Err(e) => return drop(opened.send(Err(e))),
            };
            let _ = opened.send(Ok(()));
            for job in queue {
                job(&mut client);
            }
        })?;
        let opened = ready.recv().map_err(|_| std::io::Error::other("the worker thread stopped while starting"))?;
        Ok(opened.map(|()| Worker { jobs }))
    }

    /// Run `work` on the client and wait for what it returns.
    pub(crate) fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut C) -> T + Send + 'static) -> Result<T, Stopped> {
        let (done, answer) = mpsc::sync_channel(1);
        let job: Job<C> = Box::new(move |client| drop(done.send(work(client))));
        self.jobs.send(job).map_err(|_| Stopped)?;
        answer.recv().map_err(|_| Stopped)
    }
}
