//! The task protocol of the seed: `TaskRequest` → `TaskResponse`, the result
//! being the payload upper-cased. Wire-compatible with the Python subnet
//! template's example protocol of the same id.

use crate::{
    error::HandlerError,
    protocol::{Protocol, RequestContext},
};

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
