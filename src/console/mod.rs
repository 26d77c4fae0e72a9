//! `corelog console`: a web console for any Kafka-compatible cluster, like Kafka Manager.
//!
//! A blocking HTTP server (tiny_http) on a few plain threads — never on the broker's
//! shards; the console is a separate process role, usually run beside the operator, not
//! the broker. It serves the embedded page (assets/, compiled into the binary with
//! `include_str!`, nothing loaded from the internet) and a JSON API under /api/ that
//! speaks the Kafka protocol through the toolbox's client (src/cli), so what works for
//! `corelog topic` works here too. Each API request opens its own connection to the
//! cluster: requests are rare (a person clicking), and a fresh connection never serves a
//! stale broker list.
//!
//! ```text
//!  browser ──HTTP──▶ worker thread ──▶ api::route ──▶ cli::{topic,configs,group,..} ──▶ brokers
//! ```

mod actions;
mod api;
mod groups;
mod messages;
mod metrics;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::cli::topic::TopicError;

/// Threads answering HTTP requests: a few, so one slow broker call does not block the page.
const WORKER_THREADS: usize = 4;
/// Largest request body the API accepts (a topic to create, configs to set).
const BODY_BYTES_MAX: u64 = 64 << 10;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

#[derive(clap::Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = crate::cli::client::BROKERS_ENV, default_value = crate::cli::client::BROKERS_DEFAULT)]
    pub bootstrap_server: String,
    /// Address the console listens on; loopback unless told otherwise, since the API
    /// can create and delete topics and has no login of its own.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A corelog broker's admin.listener (host:port): live throughput and latency
    /// charts from its /metrics on the cluster page.
    #[arg(long)]
    pub admin: Option<String>,
}

/// A failed API call: the HTTP status and a message saying what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }
}

impl From<TopicError> for ApiError {
    fn from(e: TopicError) -> ApiError {
        let status = match &e {
            // Could not reach or understand the cluster: the console is a gateway.
            TopicError::Client(_) => 502,
            TopicError::Usage(_) => 400,
            TopicError::Refused(_) => 409,
            TopicError::Broker { code, .. } => match code {
                // UNKNOWN_TOPIC_OR_PARTITION, GROUP_ID_NOT_FOUND
                3 | 69 => 404,
                // TOPIC_ALREADY_EXISTS, NON_EMPTY_GROUP
                36 | 68 => 409,
                // broker unavailable, not leader, timeouts, coordinator moving
                5..=8 | 14..=16 | 41 => 503,
                _ => 400,
            },
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

pub type ApiResult = Result<Value, ApiError>;

/// Serves until the process is stopped; fails only when the address cannot be bound.
pub fn run(args: &ConsoleArgs) -> anyhow::Result<()> {
    let server = Server::http(args.listen).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}: {e} (choose another --listen address)",
            args.listen
        )
    })?;
    let server = Arc::new(server);
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    tracing::info!(
        "console on http://{bound}/ for the cluster at {}",
        args.bootstrap_server
    );
    eprintln!(
        "corelog console: http://{bound}/ (cluster {})",
        args.bootstrap_server
    );
    // Registered before serving, so a SIGTERM never meets the default (killing) action.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    for i in 0..WORKER_THREADS {
        let server = Arc::clone(&server);
        let args = args.clone();
        std::thread::Builder::new()
            .name(format!("console-{i}"))
            .spawn(move || serve(&server, &args))?;
    }
    // SIGINT/SIGTERM end the console with exit 0; a request still being answered is
    // dropped (the browser retries), nothing else holds state worth finishing.
    if let Some(signal) = signals.forever().next() {
        tracing::info!("console: stopping on signal {signal}");
    }
    Ok(())
}

fn serve(server: &Server, args: &ConsoleArgs) {
    loop {
        let request = match server.recv() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("console: accepting a request failed: {e}");
                continue;
            }
        };
        answer(request, args);
    }
}

fn answer(mut request: Request, args: &ConsoleArgs) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let path = path.to_string();
    let query = parse_query(query);
    let host = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .map(|h| h.value.as_str().to_string());
    let response = match (request.method(), path.as_str()) {
        _ if !host_allowed(args.listen, host.as_deref()) => json_response(Err(ApiError {
            status: 403,
            message: format!(
                "Host {host:?} is not this console's address: open it as http://{}/",
                args.listen
            ),
        })),
        (Method::Get, "/") | (Method::Get, "/index.html") => asset(INDEX_HTML, "text/html"),
        (Method::Get, "/app.js") => asset(APP_JS, "text/javascript"),
        (Method::Get, "/style.css") => asset(STYLE_CSS, "text/css"),
        (method, p) if p.starts_with("/api/") => {
            let method = method.clone();
            let result = read_body(&mut request, &method).and_then(|body| {
                let segments = path_segments(&p["/api/".len()..])?;
                api::route(args, &method, &segments, &query, body.as_ref())
            });
            json_response(result)
        }
        _ => json_response(Err(ApiError::not_found(format!("no page at {path}")))),
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!("console: the browser went away before the answer: {e}");
    }
}

/// On a loopback address only loopback host names are answered: a page on another
/// site that rebinds its own name to 127.0.0.1 (DNS rebinding) still sends its own name
/// in Host, so it cannot read or change the cluster through the console.
fn host_allowed(listen: SocketAddr, host: Option<&str>) -> bool {
    if !listen.ip().is_loopback() {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The JSON body of a POST/PUT. Requiring `Content-Type: application/json` means a page
/// on another site cannot post to the console without a CORS preflight, which the console
/// never grants — the cheap guard against cross-site requests to a loopback admin tool.
fn read_body(request: &mut Request, method: &Method) -> Result<Option<Value>, ApiError> {
    if !matches!(method, Method::Post | Method::Put | Method::Delete) {
        return Ok(None);
    }
    let is_json = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Content-Type") && h.value.as_str().starts_with("application/json"));
    if !is_json {
        return Err(ApiError {
            status: 415,
            message: "send the request body as JSON with Content-Type: application/json"
                .to_string(),
        });
    }
    let mut text = String::new();
    request
        .as_reader()
        .take(BODY_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| ApiError::bad_request(format!("unreadable request body: {e}")))?;
    if text.len() as u64 > BODY_BYTES_MAX {
        return Err(ApiError {
            status: 413,
            message: format!("request body over {BODY_BYTES_MAX} bytes"),
        });
    }
    if text.trim().is_empty() {
        return Ok(Some(Value::Null));
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}

fn asset(body: &'static str, content_type: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body).with_header(header("Content-Type", content_type))
}

fn json_response(result: ApiResult) -> Response<std::io::Cursor<Vec<u8>>> {
    let (status, body) = match result {
        Ok(v) => (200, v),
        Err(e) => (e.status, serde_json::json!({ "error": e.message })),
    };
    Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

/// `a=1&b=x%20y` → pairs, percent-decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                percent_decode(k).unwrap_or_default(),
                percent_decode(v).unwrap_or_default(),
            )
        })
        .collect()
}

/// The path after /api/, split on `/` and percent-decoded (topic names may hold `.`).
fn path_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode(s)
                .ok_or_else(|| ApiError::bad_request(format!("bad path segment {s:?}")))
        })
        .collect()
}

/// Percent-decoding (and `+` as space, as forms send it); None for invalid escapes or
/// bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_path_decode() {
        assert_eq!(
            parse_query("a=1&b=x%20y+z&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(
            path_segments("topics/a.b%2Fc/").unwrap(),
            vec!["topics".to_string(), "a.b/c".to_string()]
        );
    }

    #[test]
    fn loopback_console_answers_loopback_names_only() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.0.0.2",
        ] {
            assert!(host_allowed(lo, Some(ok)), "{ok}");
        }
        for bad in ["evil.example:8080", "evil.example", "10.0.0.1:8080", ""] {
            assert!(!host_allowed(lo, Some(bad)), "{bad}");
        }
        assert!(!host_allowed(lo, None));
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(host_allowed(any, Some("console.example:8080")));
    }

    #[test]
    fn broker_errors_map_to_statuses() {
        let e = crate::cli::topic::broker_error("t", 3, None);
        assert_eq!(ApiError::from(e).status, 404);
        let e = crate::cli::topic::broker_error("t", 36, None);
        assert_eq!(ApiError::from(e).status, 409);
        let e = crate::cli::topic::broker_error("t", 40, None);
        assert_eq!(ApiError::from(e).status, 400);
    }
}
