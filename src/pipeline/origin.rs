//! The origin stage, last on the path: whatever no earlier stage answered goes to an origin
//! through [`upstream::forward`], which also applies the after-write effects.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::upstream;
use worker::Response;

pub async fn run(ex: &mut Exchange) -> Result<Response, EdgeError> {
    upstream::forward(ex).await
}
