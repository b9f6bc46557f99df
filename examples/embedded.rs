//! A node embedded in a user's own actor system: the node's supervisor runs
//! as a child of the application's actor, which decides what a node failure
//! means (here: log it and stop).
//!
//! ```text
//! cargo run --example embedded
//! ```

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use subnet::{
    Node,
    task::{TaskProtocol, TaskRequest},
};

/// The application's root actor.
struct App;

impl Actor for App {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(node, error) => {
                eprintln!("node {:?} failed: {error}", node.get_id());
                myself.stop(None);
            }
            SupervisionEvent::ActorTerminated(node, _, reason) => {
                println!("node {:?} stopped ({reason:?})", node.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (app, app_handle) = Actor::spawn(None, App, ()).await?;

    // Two nodes, both supervised by the application's actor.
    let server = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse()?)
        .spawn_linked(app.get_cell())
        .await?;
    server.register(TaskProtocol).await?;
    let client = Node::builder().spawn_linked(app.get_cell()).await?;

    let response = client
        .client::<TaskProtocol>()
        .call(
            server.addresses()[0].clone(),
            TaskRequest {
                task_id: "embedded".into(),
                payload: "hello from an embedded node".into(),
            },
        )
        .await?;
    println!("{}", String::from_utf8_lossy(&response.result));

    client.shutdown().await;
    server.shutdown().await;
    app.stop(None);
    app_handle.await?;
    Ok(())
}
