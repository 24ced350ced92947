//! Single-flight for cache misses within the isolate: core's [`Flights`] decides who fetches,
//! and this holds the wake-ups. Followers do not receive the leader's response itself (a
//! response body can be read once); they are woken when the leader is done and look the memory
//! tier up again, so whatever the leader stored answers them all.
//!
//! Followers poll a flag on their own timer rather than being woken by the leader: a Rust waker
//! fired by the leader would resume the follower inside the leader's request context, and
//! workerd refuses I/O (building the follower's response body) across request contexts.

use breakwater_core::singleflight::{Flights, Join, Timeouts};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use worker::Delay;

/// One fetch in flight: `done` once the leader finishes.
#[derive(Default)]
pub struct Signal {
    done: Cell<bool>,
}

/// How often a follower checks whether its leader is done.
const POLL_MS: u64 = 10;

#[derive(Default)]
struct State {
    flights: Flights,
    signals: HashMap<String, Rc<Signal>>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// The leader's claim on a key. Dropping it (success, error, or the request being cancelled)
/// ends the flight and wakes the followers, so a lost leader never strands them.
pub struct Leader {
    key: String,
    generation: u64,
    signal: Rc<Signal>,
}

impl Drop for Leader {
    fn drop(&mut self) {
        STATE.with_borrow_mut(|state| {
            if let Some(state) = state {
                state.flights.finish(&self.key, self.generation);
                if state
                    .signals
                    .get(&self.key)
                    .is_some_and(|s| Rc::ptr_eq(s, &self.signal))
                {
                    state.signals.remove(&self.key);
                }
            }
        });
        self.signal.done.set(true);
    }
}

/// What a miss should do.
pub enum Role {
    /// Fetch from the origin, holding the claim until the response is stored (or not).
    Lead(Leader),
    /// Another request is fetching: [`wait`] on it.
    Follow { signal: Rc<Signal>, wait_ms: u64 },
}

/// Joins the flight for `key` at `now_ms`. `timeouts` only applies to the isolate's first call:
/// they derive from the deployment's vars, which cannot change within an isolate.
pub fn join(key: &str, now_ms: u64, timeouts: Timeouts) -> Role {
    STATE.with_borrow_mut(|state| {
        let state = state.get_or_insert_with(|| State {
            flights: Flights::new(timeouts),
            signals: HashMap::new(),
        });
        let joined = state.flights.join(key, now_ms);
        match (joined, state.signals.get(key).cloned()) {
            (Join::Follow { wait_ms, .. }, Some(signal)) => Role::Follow { signal, wait_ms },
            (Join::Lead { generation }, _)
            | (Join::TakeOver { generation }, _)
            | (Join::Follow { generation, .. }, None) => {
                let signal = Rc::new(Signal::default());
                state.signals.insert(key.to_owned(), signal.clone());
                Role::Lead(Leader {
                    key: key.to_owned(),
                    generation,
                    signal,
                })
            }
        }
    })
}

/// Waits for the leader to finish, at most about `wait_ms`. True if it finished in time.
pub async fn wait(signal: Rc<Signal>, wait_ms: u64) -> bool {
    let mut waited = 0;
    while !signal.done.get() {
        if waited >= wait_ms {
            return false;
        }
        Delay::from(Duration::from_millis(POLL_MS)).await;
        waited += POLL_MS;
    }
    true
}
