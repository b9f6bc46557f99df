//! Node key files, in the Python subnet template's `.key` format.
//!
//! A key file is the libp2p `PrivateKey` protobuf (see the libp2p peer-id
//! spec) with type Ed25519 and the 32-byte seed as data: 36 bytes,
//! `08 01 12 20 <seed>`. A key file written by the Python template yields the
//! same peer id here.

use std::{
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use libp2p::identity::Keypair;

/// The bytes before the seed: field 1 (type) = 1 (Ed25519), field 2 (data),
/// length 32.
const HEADER: [u8; 4] = [0x08, 0x01, 0x12, 0x20];

/// The length of a key file.
pub const KEY_FILE_LEN: usize = HEADER.len() + 32;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("cannot access key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not 36 bytes long.
    #[error("key file {path} is {len} bytes; an Ed25519 key file is {KEY_FILE_LEN} bytes")]
    Length {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The file is not an Ed25519 `PrivateKey` protobuf.
    #[error(
        "key file {path} is not an Ed25519 private key (expected it to start with 08 01 12 20)"
    )]
    Type {
        /// The file.
        path: PathBuf,
    },
    /// The file already exists (keygen never overwrites a key).
    #[error("key file {path} already exists; refusing to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

/// Encodes an Ed25519 seed as a key file's bytes.
pub fn encode(seed: &[u8; 32]) -> [u8; KEY_FILE_LEN] {
    let mut bytes = [0u8; KEY_FILE_LEN];
    bytes[..HEADER.len()].copy_from_slice(&HEADER);
    bytes[HEADER.len()..].copy_from_slice(seed);
    bytes
}

/// Decodes a key file's bytes; `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Keypair, KeyError> {
    if bytes.len() != KEY_FILE_LEN {
        return Err(KeyError::Length {
            path: path.to_owned(),
            len: bytes.len(),
        });
    }
    if bytes[..HEADER.len()] != HEADER {
        return Err(KeyError::Type {
            path: path.to_owned(),
        });
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[HEADER.len()..]);
    Keypair::ed25519_from_bytes(seed).map_err(|_| KeyError::Type {
        path: path.to_owned(),
    })
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<Keypair, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode(&bytes, path)
}

/// Generates a new key and writes it to `path` (which must not exist),
/// readable and writable by its owner only (mode 0600, as the Python
/// subnet template's `keygen` writes its keys).
pub fn generate(path: &Path) -> Result<Keypair, KeyError> {
    let mut seed = [0u8; 32];
    let keypair = Keypair::generate_ed25519();
    let secret = keypair
        .clone()
        .try_into_ed25519()
        .expect("generated as ed25519")
        .secret();
    seed.copy_from_slice(secret.as_ref());
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: path.to_owned(),
            },
            _ => io(source),
        })?;
    std::io::Write::write_all(&mut file, &encode(&seed)).map_err(io)?;
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_shapes() {
        let seed = [7u8; 32];
        let path = Path::new("test.key");
        let keypair = decode(&encode(&seed), path).unwrap();
        let again = decode(&encode(&seed), path).unwrap();
        assert_eq!(keypair.public(), again.public());
        assert!(matches!(
            decode(&[0; 35], path),
            Err(KeyError::Length { len: 35, .. })
        ));
        let mut secp = encode(&seed);
        secp[1] = 0x02;
        assert!(matches!(decode(&secp, path), Err(KeyError::Type { .. })));
    }

    #[test]
    fn a_new_key_file_is_its_owners_only_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("subnet-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.key");
        let _ = std::fs::remove_file(&path);
        let keypair = generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(read(&path).unwrap().public(), keypair.public());
        assert!(matches!(generate(&path), Err(KeyError::Exists { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
