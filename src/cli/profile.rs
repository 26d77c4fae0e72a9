//! `corelog profile`: where a broker's latency goes, stage by stage, read from its
//! admin API (`GET /v1/profile`). `fetch_profile` is the reusable part (for `corelog
//! bench --report`, for instance): blocking, on the caller's thread, std sockets only.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::metrics::http::parse_response;
use crate::metrics::profile::Profile;

/// Where `corelog profile` looks without `--admin`: the broker's default admin.listener.
pub const ADMIN_DEFAULT: &str = crate::config::ADMIN_LISTENER_DEFAULT;
/// Environment variable that replaces the default.
pub const ADMIN_ENV: &str = "CORELOG_ADMIN";
/// Bound on connecting, and on each read and write.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a response body (a profile of many shards is a few hundred KiB).
const RESPONSE_BYTES_MAX: u64 = 64 << 20;

/// The broker's current profile window (`GET /v1/profile`).
pub fn fetch_profile(admin_addr: &str) -> Result<Profile, String> {
    fetch_profile_with(admin_addr, false)
}

/// The current profile window; with `reset`, the broker starts a new window after
/// answering (windows are shared by every client of that broker's admin API).
pub fn fetch_profile_with(admin_addr: &str, reset: bool) -> Result<Profile, String> {
    let path = if reset {
        "/v1/profile?reset=true"
    } else {
        "/v1/profile"
    };
    let body = http_get(admin_addr, path)?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{admin_addr}{path}: the answer is not JSON: {e}"))?;
    Profile::from_json(&v).map_err(|e| format!("{admin_addr}{path}: {e}"))
}

/// GET `path` from `addr` (host:port); the body of a 200 answer.
pub fn http_get(addr: &str, path: &str) -> Result<Vec<u8>, String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| {
        format!("cannot reach the admin API at {addr}: {e} (is admin.listener set there?)")
    })?;
    let io = |e: std::io::Error| format!("{addr}{path}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut data = Vec::new();
    stream
        .take(RESPONSE_BYTES_MAX)
        .read_to_end(&mut data)
        .map_err(io)?;
    let (status, body) = parse_response(&data).map_err(|e| format!("{addr}{path}: {e}"))?;
    if status != 200 {
        return Err(format!(
            "{addr}{path} answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        ));
    }
    Ok(body.to_vec())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileOutput {
    Text,
    Json,
}

/// Prints the profile once, or with `watch` every that many seconds the window just
/// ended (each print resets the window), until interrupted.
pub fn run(
    admin: &str,
    output: ProfileOutput,
    reset: bool,
    watch: Option<u64>,
) -> Result<(), String> {
    let print = |p: &Profile| match output {
        ProfileOutput::Text => print!("{}", p.table()),
        ProfileOutput::Json => println!("{}", p.to_json()),
    };
    let Some(every) = watch else {
        print(&fetch_profile_with(admin, reset)?);
        return Ok(());
    };
    let every = Duration::from_secs(every.max(1));
    fetch_profile_with(admin, true)?;
    loop {
        std::thread::sleep(every);
        let p = fetch_profile_with(admin, true)?;
        print(&p);
        if output == ProfileOutput::Text {
            println!();
        }
        let _ = std::io::stdout().flush();
    }
}
