//! The embedded store's writer: one thread owns event writes and commits whatever has queued up since
//! the last commit in one transaction (group commit). Each event is still acknowledged only
//! after the transaction holding it has committed; concurrent agents share the fsync.

use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use ward_store::Store;
use ward_types::event::EventInput;

/// Most events folded into one transaction.
pub const MAX_BATCH: usize = 512;

struct Job {
    input: EventInput,
    reply: oneshot::Sender<Result<Value, String>>,
}

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
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
                    let inputs: Vec<EventInput> = batch.iter().map(|j| j.input.clone()).collect();
                    match store.record_events(&inputs, now) {
                        Ok(events) => {
                            for (job, ev) in batch.into_iter().zip(events) {
                                let _ = job.reply.send(Ok(ev));
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, events = inputs.len(), "event store write failed; nothing in the batch was acknowledged");
                            for job in batch {
                                let _ = job.reply.send(Err(e.to_string()));
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
    pub async fn enqueue(
        &self,
        input: EventInput,
    ) -> Result<oneshot::Receiver<Result<Value, String>>, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { input, reply })
            .await
            .map_err(|_| "the event writer has stopped".to_string())?;
        Ok(rx)
    }
}
