//! A closed loop bounded by time rather than by a request count, for phases of fixed length:
//! workers as in [`super::closed_loop`], each sending the sequence's next request (round and
//! round) until the deadline, every sample stamped with when its answer (or failure) came.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Fetched, Request, collect, fetch};
use crate::stats::Sample;

/// One request's sample and when, after the run's start, its outcome came.
#[derive(Debug, Clone)]
pub struct Timed {
    pub at: Duration,
    pub sample: Sample,
}

/// Sends `requests` in order, cycling, to `base` with `concurrency` in flight from `started`
/// until `until` after it: a worker starts no request past that. Samples in the order sent.
pub async fn closed_loop_until(
    client: &reqwest::Client,
    base: &str,
    requests: Arc<[Request]>,
    concurrency: usize,
    started: Instant,
    until: Duration,
    label: &str,
) -> Vec<Timed> {
    assert!(!requests.is_empty(), "a closed loop needs requests");
    let base: Arc<str> = base.into();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            let (requests, next) = (requests.clone(), next.clone());
            tokio::spawn(async move {
                let mut done: Vec<(usize, Duration, Fetched)> = Vec::new();
                while started.elapsed() < until {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let request = &requests[i % requests.len()];
                    let fetched = fetch(&client, &base, request, false, Instant::now()).await;
                    done.push((i, started.elapsed(), fetched));
                }
                done
            })
        })
        .collect();
    let mut done = Vec::new();
    for worker in workers {
        // A worker that panicked loses its samples; there is no fixed count to fill in here.
        if let Ok(d) = worker.await {
            done.extend(d);
        }
    }
    done.sort_unstable_by_key(|(i, _, _)| *i);
    let ats: Vec<Duration> = done.iter().map(|(_, at, _)| *at).collect();
    let samples = collect(
        done.into_iter().map(|(_, _, f)| Some(f)).collect(),
        started.elapsed(),
        label,
    );
    ats.into_iter()
        .zip(samples.samples)
        .map(|(at, sample)| Timed { at, sample })
        .collect()
}
