//! A node embedded in a user's own actor system: the node's supervisor runs
//! as a child of the application's actor, which decides what a node failure
//! means. Here it restarts the node: the example kills the node's swarm
//! actor, the application receives `ActorFailed`, starts a new node in its
//! place, and the next call reaches the new one.
//!
//! ```text
//! cargo run --example embedded
//! ```

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use subnet::{
    Node,
    task::{TaskProtocol, TaskRequest},
};

/// The application's root actor: it keeps one serving node running.
struct App;

/// What the application answers.
enum AppMessage {
    /// The node it runs now.
    Server(RpcReplyPort<Node>),
}

/// Starts a node serving the task protocol, supervised by `app`.
async fn start_server(app: &ActorRef<AppMessage>) -> Result<Node, ActorProcessingErr> {
    let node = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse()?)
        .spawn_linked(app.get_cell())
        .await?;
    node.register(TaskProtocol).await?;
    Ok(node)
}

impl Actor for App {
    type Msg = AppMessage;
    type State = Node;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<AppMessage>,
        _: (),
    ) -> Result<Node, ActorProcessingErr> {
        start_server(&myself).await
    }

    async fn handle(
        &self,
        _: ActorRef<AppMessage>,
        message: AppMessage,
        node: &mut Node,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AppMessage::Server(reply) => {
                let _ = reply.send(node.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<AppMessage>,
        event: SupervisionEvent,
        node: &mut Node,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(failed, error) => {
                println!(
                    "node {:?} failed ({error}); starting a new one",
                    failed.get_id()
                );
                *node = start_server(&myself).await?;
            }
            SupervisionEvent::ActorTerminated(stopped, _, reason) => {
                println!("node {:?} stopped ({reason:?})", stopped.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Calls the application's current server once.
async fn call(
    app: &ActorRef<AppMessage>,
    client: &Node,
) -> Result<Node, Box<dyn std::error::Error>> {
    let server = ractor::call!(app, AppMessage::Server)?;
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
    println!(
        "{} answered {}",
        server.peer_id(),
        String::from_utf8_lossy(&response.result)
    );
    Ok(server)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (app, app_handle) = Actor::spawn(None, App, ()).await?;
    let client = Node::builder().build().await?;

    let first = call(&app, &client).await?;

    // The node's swarm actor dies: the node fails, the application restarts it.
    first.actors().ok_or("the node runs")?.swarm.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let server = ractor::call!(app, AppMessage::Server)?;
        if server.peer_id() != first.peer_id() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the application did not restart its node".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = call(&app, &client).await?;

    client.shutdown().await;
    second.shutdown().await;
    app.stop(None);
    app_handle.await?;
    Ok(())
}
