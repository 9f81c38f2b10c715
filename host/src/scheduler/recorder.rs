//! The store writer: one thread that batches the scheduler's hot writes.
//!
//! Every run needs two commits — its claim before the guest starts, its outcome after —
//! and one commit per call through the store's single connection is what capped durable
//! throughput (benches/scheduler.rs: one pair at a time ~8k/s, batches of 64 ~55k/s).
//! Run tasks hand claims and finishes to this thread; it takes whatever is pending (up to
//! [`BATCH`] of each), claims first (a guest is waiting), commits each kind in one
//! transaction, then answers. Nothing changes for S3: a claim is still durable before its
//! guest starts, and a finish that is lost in a crash leaves the run `running`, which the
//! next start records as interrupted and retries.
//!
//! Writes apply in the order they were sent where order matters: a finish or release is
//! never applied before a claim sent ahead of it, and a release ends its batch, so a claim
//! sent after a release (the same slot claimed again) sees the row gone.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::{Claim, Ledger, NewRun, RunFinish, StoreError};

/// Most claims (and, separately, finishes) committed in one transaction.
const BATCH: usize = 64;

/// What runs once a finish or release is applied (it tells the waiting side).
type After = Box<dyn FnOnce(Result<bool, String>) + Send>;

enum Write {
    Claim(NewRun, oneshot::Sender<Result<Claim, StoreError>>),
    /// The outcome to record, then `after` runs (to notify the scheduler).
    Finish(String, RunFinish, After),
    /// A claim taken ahead of its instant is given up; `after` hears whether a row went.
    Release(String, After),
}

/// Hands writes to the store thread; cloneable, cheap.
#[derive(Clone)]
pub(crate) struct Recorder {
    tx: Sender<Write>,
}

impl Recorder {
    /// Starts the writer thread; it stops when every `Recorder` clone is dropped.
    pub(crate) fn start(ledger: Arc<dyn Ledger>) -> std::io::Result<Recorder> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sandcron-recorder".into())
            .spawn(move || write_loop(&*ledger, rx))?;
        Ok(Recorder { tx })
    }

    /// Claims a run durably; resolves once the claim is committed.
    pub(crate) async fn claim(&self, run: NewRun) -> Result<Claim, StoreError> {
        self.submit_claim(run).await.unwrap_or(Err(StoreError::Closed))
    }

    /// Sends a claim to the writer without waiting: the answer arrives on the receiver once
    /// committed (a dropped sender means the writer has stopped).
    pub(crate) fn submit_claim(&self, run: NewRun) -> oneshot::Receiver<Result<Claim, StoreError>> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::SendError(Write::Claim(_, reply))) = self.tx.send(Write::Claim(run, reply))
        {
            let _ = reply.send(Err(StoreError::Closed));
        }
        answer
    }

    /// Gives up a claim taken ahead of its instant ([`crate::store::Ledger::release`]);
    /// `after` is called once it is applied.
    pub(crate) fn release(
        &self,
        run_id: String,
        after: impl FnOnce(Result<bool, String>) + Send + 'static,
    ) {
        if let Err(mpsc::SendError(Write::Release(_, after))) =
            self.tx.send(Write::Release(run_id, Box::new(after)))
        {
            after(Err("the store writer has stopped".into()));
        }
    }

    /// Records a run's end; `after` is called with the result once it is committed.
    pub(crate) fn finish(
        &self,
        run_id: String,
        finish: RunFinish,
        after: impl FnOnce(Result<bool, String>) + Send + 'static,
    ) {
        if let Err(mpsc::SendError(Write::Finish(_, _, after))) =
            self.tx.send(Write::Finish(run_id, finish, Box::new(after)))
        {
            after(Err("the store writer has stopped".into()));
        }
    }
}

fn write_loop(ledger: &dyn Ledger, rx: Receiver<Write>) {
    let mut claims: Vec<(NewRun, oneshot::Sender<Result<Claim, StoreError>>)> = Vec::new();
    let mut finishes: Vec<(String, RunFinish, After)> = Vec::new();
    loop {
        // Block for the first write, then take whatever else is already queued.
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(write) => write,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut next = Some(first);
        let mut releases = Vec::new();
        while let Some(write) = next.take() {
            match write {
                Write::Claim(run, reply) => claims.push((run, reply)),
                Write::Finish(id, finish, after) => finishes.push((id, finish, after)),
                Write::Release(id, after) => releases.push((id, after)),
            }
            // A release ends the batch: a claim sent after it must see its row gone.
            if claims.len() < BATCH && finishes.len() < BATCH && releases.is_empty() {
                next = rx.try_recv().ok();
            }
        }
        if !claims.is_empty() {
            let runs: Vec<NewRun> = claims.iter().map(|(run, _)| run.clone()).collect();
            match ledger.claim_many(&runs) {
                Ok(results) => {
                    for ((_, reply), result) in claims.drain(..).zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                // One bad row fails the batch: retry one by one so only it fails.
                Err(_) => {
                    for (run, reply) in claims.drain(..) {
                        let _ = reply.send(ledger.claim(&run));
                    }
                }
            }
        }
        for (id, after) in releases {
            after(ledger.release(&id).map_err(|e| e.to_string()));
        }
        if !finishes.is_empty() {
            let rows: Vec<(String, RunFinish)> =
                finishes.iter().map(|(id, f, _)| (id.clone(), f.clone())).collect();
            match ledger.finish_many(&rows) {
                Ok(results) => {
                    for ((_, _, after), result) in finishes.drain(..).zip(results) {
                        after(Ok(result));
                    }
                }
                Err(_) => {
                    for (id, finish, after) in finishes.drain(..) {
                        after(ledger.finish(&id, &finish).map_err(|e| e.to_string()));
                    }
                }
            }
        }
    }
}
