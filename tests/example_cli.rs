//! The `task_protocol` example driven as a user would: serve in one process,
//! call from another, and bad input answered with one line and a failure code.

mod common;

use std::{path::PathBuf, process::Command};

use common::{KillOnDrop, free_port, spawn_listening};

/// The example's binary: cargo builds examples before it runs the tests.
fn example() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    deps.parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples/task_protocol")
}

#[test]
fn serve_then_call_prints_the_payload_upper_cased() {
    let (server, address) = spawn_listening(Command::new(example()).args([
        "serve",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]));
    let _server = KillOnDrop(server);
    assert!(address.contains("/p2p/"), "{address}");

    let call = Command::new(example())
        .args(["call", &address, "hello"])
        .output()
        .unwrap();
    assert!(
        call.status.success(),
        "{}",
        String::from_utf8_lossy(&call.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&call.stdout).trim(), "HELLO");
}

fn fails_with_one_line(args: &[&str]) -> String {
    let output = Command::new(example()).args(args).output().unwrap();
    assert!(!output.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line for {args:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_destinations_get_one_clear_line() {
    let missing = fails_with_one_line(&["call"]);
    assert!(missing.contains("missing destination"), "{missing}");
    let malformed = fails_with_one_line(&["call", "/ip4/127.0.0.1/tcp/nope", "hi"]);
    assert!(malformed.contains("not a multiaddr"), "{malformed}");
    let no_peer = fails_with_one_line(&["call", "/ip4/127.0.0.1/tcp/4001", "hi"]);
    assert!(no_peer.contains("/p2p/"), "{no_peer}");
    let port = free_port();
    let unreachable = format!(
        "/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWGjRqcG9qKTRVbBsFPBVGwDmQ9yyhjRkTuxBqiLbk8oKY"
    );
    let dial = fails_with_one_line(&["call", &unreachable, "hi"]);
    assert!(dial.contains("dialing"), "{dial}");
    let listen = fails_with_one_line(&["serve", "--listen", "not-an-address"]);
    assert!(listen.contains("not a multiaddr"), "{listen}");
}

#[test]
fn the_embedded_example_restarts_its_failed_node() {
    let embedded = example().with_file_name("embedded");
    let run = Command::new(embedded).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(stdout.matches("answered HELLO").count(), 2, "{stdout}");
    assert!(
        stdout.contains("failed (the swarm actor stopped: killed); starting a new one"),
        "{stdout}"
    );
}
