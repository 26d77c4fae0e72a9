//! Length-prefixed frames: a big-endian i32 size, then that many bytes of body (a request
//! header followed by the request). The size is checked before any buffer is allocated.

/// Kafka's `socket.request.max.bytes` default: the largest request body we accept.
pub const SOCKET_REQUEST_MAX_BYTES_DEFAULT: usize = 104_857_600;

/// Bytes of the size prefix in front of every frame.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// A frame whose size prefix cannot be honoured. Kafka closes the connection on both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size_bytes} is negative (socket.request.max.bytes is {max_bytes}); closing the connection")]
    NegativeSize { size_bytes: i32, max_bytes: usize },
    #[error("frame size {size_bytes} is larger than socket.request.max.bytes ({max_bytes}); closing the connection")]
    TooLarge { size_bytes: i32, max_bytes: usize },
}

/// Body length announced by a frame's size prefix, if it is within `max_bytes`. A zero
/// size is accepted here, as Kafka does; the header decode then reports it as truncated.
pub fn frame_len(prefix: [u8; FRAME_PREFIX_BYTES], max_bytes: usize) -> Result<usize, FrameError> {
    let size_bytes = i32::from_be_bytes(prefix);
    let Ok(len) = usize::try_from(size_bytes) else {
        return Err(FrameError::NegativeSize {
            size_bytes,
            max_bytes,
        });
    };
    if len > max_bytes {
        return Err(FrameError::TooLarge {
            size_bytes,
            max_bytes,
        });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = SOCKET_REQUEST_MAX_BYTES_DEFAULT;

    #[test]
    fn accepts_sizes_up_to_the_limit() {
        assert_eq!(frame_len(0i32.to_be_bytes(), MAX), Ok(0));
        assert_eq!(frame_len(17i32.to_be_bytes(), MAX), Ok(17));
        assert_eq!(frame_len((MAX as i32).to_be_bytes(), MAX), Ok(MAX));
    }

    #[test]
    fn rejects_oversized_frames_naming_both_numbers() {
        let err = frame_len((MAX as i32 + 1).to_be_bytes(), MAX).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                size_bytes: MAX as i32 + 1,
                max_bytes: MAX
            }
        );
        let message = err.to_string();
        assert!(message.contains("104857601") && message.contains("104857600"));
        assert!(frame_len(i32::MAX.to_be_bytes(), MAX).is_err());
    }

    #[test]
    fn rejects_negative_sizes_naming_both_numbers() {
        let err = frame_len((-1i32).to_be_bytes(), MAX).unwrap_err();
        assert_eq!(
            err,
            FrameError::NegativeSize {
                size_bytes: -1,
                max_bytes: MAX
            }
        );
        assert!(err.to_string().contains("-1") && err.to_string().contains("104857600"));
        assert!(frame_len(i32::MIN.to_be_bytes(), MAX).is_err());
    }
}
