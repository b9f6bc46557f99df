//! A direct protocol on messages of its own: `proto/greeting.proto`,
//! compiled by `build.rs`, served by [`Greeter`]. The README's "Your own
//! messages" walks through it; `tests/greet.rs` makes real calls.

use subnet::{HandlerError, Protocol, RequestContext};

/// The messages generated from `proto/greeting.proto`: the file is named
/// after its proto package, `greeting`.
pub mod greeting {
    include!(concat!(env!("OUT_DIR"), "/greeting.rs"));
}

pub use greeting::{GreetRequest, GreetResponse};

/// Greets the name it is given, as many times as it is asked.
#[derive(Debug)]
pub struct Greeter;

/// The most greetings one response holds.
pub const MAX_TIMES: u32 = 16;

impl Protocol for Greeter {
    const ID: &'static str = "/own-messages/greet/1.0.0";
    type Request = GreetRequest;
    type Response = GreetResponse;

    async fn handle(
        &self,
        _ctx: RequestContext,
        request: GreetRequest,
    ) -> Result<GreetResponse, HandlerError> {
        // A failed request: the caller's stream is reset, and the failure
        // counted and passed to `Protocol::on_failure`.
        if request.name.is_empty() {
            return Err(HandlerError::new("no name to greet"));
        }
        // `?` on another error type needs it wrapped first.
        let times: u32 = request.times.parse().map_err(HandlerError::new)?;
        let greeting = vec![format!("hello, {}", request.name); times.min(MAX_TIMES) as usize];
        Ok(GreetResponse {
            greeting: greeting.join("; "),
        })
    }
}
