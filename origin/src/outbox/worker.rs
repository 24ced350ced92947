//! The worker tasks: each ticks the [`Relay`] in a loop, straight again while batches come back
//! full, otherwise waiting for a new order's [`Wakeup`], the poll interval, or shutdown. Shutdown
//! is checked between ticks only, so a worker finishes (settles) the batch it holds, then exits.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Clock, Relay, Wakeup};

/// Running workers, and the switch that stops them.
#[derive(Debug)]
pub struct Workers {
    stop: Stop,
    tasks: Vec<JoinHandle<()>>,
}

/// Tells the workers to stop after their current batch. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Stop {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Workers {
    /// Starts `count` workers (none for 0) ticking `relay` with `clock`.
    pub fn spawn(
        relay: &Relay,
        wakeup: &Wakeup,
        count: usize,
        poll_interval: Duration,
        clock: Clock,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..count)
            .map(|worker| {
                let (relay, wakeup, stopped) = (relay.clone(), wakeup.clone(), stopped.clone());
                tokio::spawn(async move {
                    run(worker, relay, wakeup, poll_interval, clock, stopped).await;
                })
            })
            .collect();
        if count > 0 {
            tracing::info!(workers = count, "outbox workers started");
        }
        Self {
            stop: Stop(Arc::new(stop)),
            tasks,
        }
    }

    /// The switch, for whoever learns of shutdown first.
    pub fn stopper(&self) -> Stop {
        self.stop.clone()
    }

    /// Stops the workers and waits until each has settled its batch and exited.
    pub async fn stop_and_join(self) {
        self.stop.stop();
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "an outbox worker panicked");
            }
        }
    }
}

async fn run(
    worker: usize,
    relay: Relay,
    wakeup: Wakeup,
    poll_interval: Duration,
    clock: Clock,
    mut stopped: watch::Receiver<bool>,
) {
    let batch_size = usize::try_from(relay.batch_size().get()).unwrap_or(usize::MAX);
    while !*stopped.borrow() {
        let full = match relay.deliver_due(clock()).await {
            Ok(outcomes) => outcomes.len() >= batch_size,
            Err(error) => {
                tracing::error!(worker, %error, "outbox tick failed; retrying after the poll interval");
                false
            }
        };
        if full {
            // More is probably due already.
            continue;
        }
        tokio::select! {
            () = wakeup.wait() => {}
            () = tokio::time::sleep(poll_interval) => {}
            changed = stopped.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!(worker, "outbox worker stopped");
}
