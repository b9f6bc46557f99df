//! The wire format: one `uvarint(len) || protobuf` frame each way per stream.
//!
//! The length prefix is an unsigned LEB128 varint of at most
//! [`MAX_VARINT_LEN`] bytes. A length above the reader's maximum is rejected
//! before anything is allocated, and a frame is read until exactly its length
//! arrived: an end of stream before that is an error, never a short message.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::core::upgrade::NegotiationError;

/// The longest length prefix accepted: a `u64` needs at most 10 varint bytes.
pub const MAX_VARINT_LEN: usize = 10;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended (or was reset) before the first byte of the frame.
    #[error("the stream ended before any byte of the frame arrived")]
    Closed,
    /// The length prefix did not end within [`MAX_VARINT_LEN`] bytes.
    #[error("the length prefix runs past {MAX_VARINT_LEN} bytes")]
    VarintTooLong,
    /// The announced length exceeds the reader's maximum frame size.
    #[error("the frame announces {len} bytes, more than the maximum of {max} bytes")]
    TooLarge {
        /// The length announced by the prefix.
        len: u64,
        /// The reader's maximum frame size.
        max: usize,
    },
    /// The stream ended inside the length prefix or the body.
    #[error("the stream ended after {received} of {expected} bytes of the frame")]
    Truncated {
        /// Bytes the frame should have had (prefix bytes while inside the prefix).
        expected: usize,
        /// Bytes that arrived before the end.
        received: usize,
    },
    /// The underlying stream failed.
    #[error("reading the frame failed: {0}")]
    Io(#[from] io::Error),
}

/// Reads one length-prefixed frame of at most `max_len` bytes.
///
/// Not cancel-safe: dropped mid-frame, the bytes read so far are lost and
/// the stream is left inside the frame; drop the stream with it.
pub async fn read_frame<S>(stream: &mut S, max_len: usize) -> Result<Vec<u8>, FrameError>
where
    S: AsyncRead + Unpin,
{
    let len = read_length(stream, max_len).await?;
    let mut body = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match stream.read(&mut body[filled..]).await? {
            0 => {
                return Err(FrameError::Truncated {
                    expected: len,
                    received: filled,
                });
            }
            n => filled += n,
        }
    }
    Ok(body)
}

/// Reads a varint length prefix and checks it against `max_len`.
async fn read_length<S>(stream: &mut S, max_len: usize) -> Result<usize, FrameError>
where
    S: AsyncRead + Unpin,
{
    // Bits past 64 (only possible in the 10th byte) saturate the length.
    let mut len = 0u64;
    for i in 0..MAX_VARINT_LEN {
        let mut byte = [0u8; 1];
        let n = match stream.read(&mut byte).await {
            Ok(n) => n,
            Err(e) if i == 0 && is_reset(&e) => return Err(FrameError::Closed),
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(if i == 0 {
                FrameError::Closed
            } else {
                FrameError::Truncated {
                    expected: i + 1,
                    received: i,
                }
            });
        }
        let bits = u64::from(byte[0] & 0x7f);
        let shifted = bits << (7 * i);
        len |= if shifted >> (7 * i) == bits {
            shifted
        } else {
            u64::MAX
        };
        if byte[0] & 0x80 == 0 {
            return match usize::try_from(len) {
                Ok(len) if len <= max_len => Ok(len),
                _ => Err(FrameError::TooLarge { len, max: max_len }),
            };
        }
    }
    Err(FrameError::VarintTooLong)
}

/// Whether an I/O error means the remote reset the stream.
pub(crate) fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::WriteZero
    )
}

/// Whether an I/O error means the remote does not speak the stream's
/// protocol: with lazy (V1-lazy) negotiation that is learnt at the first read.
pub(crate) fn is_unsupported(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<NegotiationError>())
        .is_some_and(|e| matches!(e, NegotiationError::Failed))
}

/// Whether an I/O error means the stream ended before the remote confirmed
/// its protocol (lazy negotiation): the stream never opened. A frame read
/// reports an end of the stream itself as `Closed` or `Truncated`.
pub(crate) fn is_unconfirmed(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::UnexpectedEof
}

/// Encodes `message` as one frame: varint length, then the protobuf bytes.
pub fn encode_frame<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_length_delimited_to_vec()
}

/// Writes an already encoded frame and flushes it.
///
/// Not cancel-safe: dropped mid-write, part of the frame may have been sent;
/// drop (reset) the stream with it.
pub async fn write_frame<S>(stream: &mut S, frame: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(frame).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
        read_frame(&mut futures::io::Cursor::new(bytes.to_vec()), max).await
    }

    #[tokio::test]
    async fn reads_a_frame_exactly() {
        let mut bytes = vec![3, b'a', b'b', b'c'];
        bytes.extend_from_slice(b"next");
        let mut cursor = futures::io::Cursor::new(bytes);
        assert_eq!(read_frame(&mut cursor, 16).await.unwrap(), b"abc");
        assert_eq!(cursor.position(), 4, "reads no byte past the frame");
    }

    #[tokio::test]
    async fn rejects_bad_frames() {
        assert!(matches!(read(&[], 16).await, Err(FrameError::Closed)));
        assert!(matches!(
            read(&[0x80], 16).await,
            Err(FrameError::Truncated {
                expected: 2,
                received: 1
            })
        ));
        assert!(matches!(
            read(&[0xff; 11], 16).await,
            Err(FrameError::VarintTooLong)
        ));
        assert!(matches!(
            read(&[0x80, 0x01], 16).await,
            Err(FrameError::TooLarge { len: 128, max: 16 })
        ));
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            read(&huge, 16).await,
            Err(FrameError::TooLarge {
                len: u64::MAX,
                max: 16
            })
        ));
        assert!(matches!(
            read(&[5, 1, 2], 16).await,
            Err(FrameError::Truncated {
                expected: 5,
                received: 2
            })
        ));
    }

    #[tokio::test]
    async fn round_trips_an_encoded_message() {
        let frame = encode_frame(&crate::task::TaskRequest {
            task_id: "t".into(),
            payload: vec![7; 300].into(),
        });
        let body = read(&frame, 1024).await.unwrap();
        let decoded: crate::task::TaskRequest = prost::Message::decode(&body[..]).unwrap();
        assert_eq!(decoded.payload.len(), 300);
    }
}
