//! The task protocol of the seed: `TaskRequest` → `TaskResponse`, the result
//! being the payload upper-cased. Wire-compatible with the Python subnet
//! template's example protocol of the same id.

use crate::{context::RequestContext, error::HandlerError, protocol::Protocol};

include!(concat!(env!("OUT_DIR"), "/subnet.task.rs"));

/// The seed's task protocol: answers with the payload upper-cased.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskProtocol;

impl Protocol for TaskProtocol {
    const ID: &'static str = "/subnet/task_protocol/1.0.0";
    type Request = TaskRequest;
    type Response = TaskResponse;

    async fn handle(
        &self,
        _ctx: RequestContext,
        request: TaskRequest,
    ) -> Result<TaskResponse, HandlerError> {
        Ok(TaskResponse {
            accepted: true,
            result: request.payload.to_ascii_uppercase().into(),
            error: String::new(),
        })
    }
}

/// Why a task response says the task was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailed {
    /// The peer answered `accepted = false`, with its `error` text (empty if
    /// it gave none).
    #[error("the peer did not accept the task: {}", reason(.0))]
    NotAccepted(String),
    /// The peer answered `accepted = true` but with an `error` text.
    #[error("the peer reported an error: {0}")]
    Error(String),
}

fn reason(text: &str) -> &str {
    if text.is_empty() {
        "no reason given"
    } else {
        text
    }
}

impl TaskResponse {
    /// The result, or why the peer says the task was not done: `accepted =
    /// false`, or an `error` text. The result may be empty.
    pub fn outcome(self) -> Result<bytes::Bytes, TaskFailed> {
        match (self.accepted, self.error.is_empty()) {
            (false, _) => Err(TaskFailed::NotAccepted(self.error)),
            (true, false) => Err(TaskFailed::Error(self.error)),
            (true, true) => Ok(self.result),
        }
    }
}
