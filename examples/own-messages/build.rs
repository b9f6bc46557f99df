//! Compiles `proto/` with prost, as a user's crate does: `protox` parses
//! the `.proto` files (pure Rust, no system `protoc`), and the generated
//! code derives `Message` through `subnet::prost`, so this crate needs no
//! `prost` dependency of its own.

const PROTOS: &[&str] = &["proto/greeting.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    prost_build::Config::new()
        .prost_path("::subnet::prost")
        .compile_fds(descriptors)?;
    Ok(())
}
