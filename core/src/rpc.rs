//! Commands to Durable Objects as typed contracts: each command names itself on the wire and
//! says what its answer is, so the edge's one client and each object agree on both by type.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A request to a Durable Object, with the type of its answer.
pub trait Command: Serialize + DeserializeOwned {
    /// The command's name on the wire.
    const NAME: &'static str;
    type Reply: Serialize + DeserializeOwned;
}
