//! Small helpers shared by several layers.

use std::path::Path;

/// 16 random bytes from the kernel (getrandom), for topic ids and the cluster id.
pub fn random_uuid() -> [u8; 16] {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: getrandom writes at most len bytes into the buffer we pass.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    // Version 4, variant 1, as java.util.UUID.randomUUID().
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// Kafka's cluster id shape: a UUID in URL-safe base64 without padding (22 characters).
pub fn cluster_id() -> String {
    base64_url(&random_uuid())
}

/// URL-safe base64 without padding, as Kafka prints UUIDs.
pub fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Writes `data` to `path` so that a crash leaves either the old or the new file: a
/// temporary file, fsync, rename, fsync of the directory. Blocking: call it from start-up
/// code or through `runtime::blocking`.
pub fn write_file_atomic_blocking(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_file_atomic_mode_blocking(path, data, 0o644)
}

/// `write_file_atomic_blocking` with the new file's permission bits (before the umask):
/// 0o600 for a file only the broker's user may read.
pub fn write_file_atomic_mode_blocking(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    crate::storage::io::write_file_atomic_blocking(path, &path.with_extension("tmp"), data, mode)
}

/// Milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_kafka_shape() {
        assert_eq!(super::base64_url(&[0xff; 16]), "_____________________w");
        assert_eq!(super::base64_url(b"abc"), "YWJj");
    }
}
