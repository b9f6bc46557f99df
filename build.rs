//! Compiles `proto/` with prost. The `.proto` files are parsed by `protox`, a
//! pure-Rust compiler, so a fresh machine needs no system `protoc`.

const PROTOS: &[&str] = &[
    "proto/task.proto",
    "proto/heartbeat.proto",
    "proto/peer_exchange.proto",
    "proto/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    prost_build::Config::new()
        .bytes([".subnet.task"])
        .compile_fds(descriptors)?;
    Ok(())
}
