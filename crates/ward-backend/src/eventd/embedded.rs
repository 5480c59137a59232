//! The embedded store's writer: one thread owns event writes and commits whatever has queued up since
//! the last commit in one transaction (group commit). Each event is still acknowledged only
//! after the transaction holding it has committed; concurrent agents share the fsync.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use ward_store::Store;
use ward_types::event::Prepared;

/// Most events folded into one transaction.
pub const MAX_BATCH: usize = 512;

struct Job {
    input: Prepared,
    /// Whether the caller wants the stored event back (else it gets None).
    keep: bool,
    reply: oneshot::Sender<Result<Option<String>, String>>,
}

/// Where a queued event's outcome arrives: the stored event's JSON text (when kept), once
/// committed.
pub type Answer = oneshot::Receiver<Result<Option<String>, String>>;

/// A handle to the writer thread.
#[derive(Clone)]
pub struct EmbeddedWriter {
    tx: mpsc::Sender<Job>,
}

impl EmbeddedWriter {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<Store>) -> EmbeddedWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("ward-eventd".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => batch.push(j),
                            Err(_) => break,
                        }
                    }
                    let now = ward_types::unix_now();
                    let (inputs, replies): (Vec<Prepared>, Vec<_>) =
                        batch.into_iter().map(|j| (j.input, (j.keep, j.reply))).unzip();
                    let n = inputs.len();
                    match store.record_events(&inputs, now) {
                        Ok(events) => {
                            for ((keep, reply), ev) in replies.into_iter().zip(events) {
                                let _ = reply.send(Ok(keep.then_some(ev)));
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, events = n, "event store write failed; nothing in the batch was acknowledged");
                            for (_, reply) in replies {
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .expect("spawn the event writer thread");
        EmbeddedWriter { tx }
    }

    /// Queues one event (waiting only for room in the queue); the receiver answers once it
    /// is committed. Events queued one after another are committed in that order.
    pub async fn enqueue(&self, input: Prepared) -> Result<Answer, String> {
        self.enqueue_or_return(input, true)
            .await
            .map_err(|(e, _)| e)
    }

    /// As `enqueue`, giving the event back when it was not queued; with `keep` false the
    /// receiver gets None instead of the stored event.
    pub async fn enqueue_or_return(
        &self,
        input: Prepared,
        keep: bool,
    ) -> Result<Answer, (String, Prepared)> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { input, keep, reply })
            .await
            .map_err(|e| ("the event writer has stopped".to_string(), e.0.input))?;
        Ok(rx)
    }
}
