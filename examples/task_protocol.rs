//! The seed's task protocol, as two processes.
//!
//! ```text
//! cargo run --example task_protocol -- serve --listen /ip4/127.0.0.1/tcp/4001
//! cargo run --example task_protocol -- call /ip4/127.0.0.1/tcp/4001/p2p/<peer id> hello
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use subnet::{
    Multiaddr, Node,
    task::{TaskProtocol, TaskRequest},
};

#[derive(Parser)]
#[command(about = "Serve or call the seed's task protocol")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the task protocol until Ctrl-C.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0")]
        listen: String,
    },
    /// Call the task protocol of a peer and print the result.
    Call {
        /// The peer: a multiaddr ending in /p2p/<peer id>.
        destination: Option<String>,
        /// The payload to upper-case.
        #[arg(default_value = "hello")]
        payload: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    match args.command {
        Command::Serve { listen } => {
            let listen: Multiaddr = listen
                .parse()
                .map_err(|e| format!("`{listen}` is not a multiaddr: {e}"))?;
            let node = Node::builder().listen(listen).build().await?;
            node.register(TaskProtocol).await?;
            for address in node.addresses() {
                println!("listening on {address}");
            }
            tokio::signal::ctrl_c().await?;
            node.shutdown().await;
        }
        Command::Call {
            destination,
            payload,
        } => {
            let destination = destination.ok_or(
                "missing destination: give the server's multiaddr ending in /p2p/<peer id>",
            )?;
            let node = Node::builder().build().await?;
            let task = node.client::<TaskProtocol>();
            let request = TaskRequest {
                task_id: "cli".into(),
                payload: payload.into_bytes().into(),
            };
            let response = task.call(&destination, request).await;
            node.shutdown().await;
            // `accepted = false` or an error text is a failure: say why, exit 1.
            let result = response?.outcome()?;
            if result.is_empty() {
                eprintln!("note: the response's result is empty");
            }
            println!("{}", String::from_utf8_lossy(&result));
        }
    }
    Ok(())
}
