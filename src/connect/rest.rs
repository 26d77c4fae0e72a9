//! The Connect REST API on `listeners` (Kafka's paths, bodies and status codes):
//!
//! ```text
//! GET    /                               {"version","commit","kafka_cluster_id"}
//! GET    /connector-plugins              [{"class","type","version"}]
//! GET    /connectors                     ["name", ...]; ?expand=status|info: {"name":{"status","info"}}
//! POST   /connectors                     {"name","config"} → 201 connector info (409 if it exists)
//! GET    /connectors/{name}              {"name","config","tasks":[{"connector","task"}],"type"}
//! GET    /connectors/{name}/config       {"key":"value", ...}
//! PUT    /connectors/{name}/config       → 201 (created) or 200 (updated), connector info
//! GET    /connectors/{name}/tasks        [{"id":{"connector","task"},"config"}]
//! GET    /connectors/{name}/tasks/0/status {"id","state","worker_id"[,"trace"]}
//! GET    /connectors/{name}/status       {"name","connector":{"state","worker_id"},"tasks":[{"id","state","worker_id"[,"trace"]}],"type"}
//! PUT    /connectors/{name}/pause|resume → 202, no body
//! POST   /connectors/{name}/restart      → 204 (the task restarts too)
//! POST   /connectors/{name}/tasks/0/restart → 204
//! DELETE /connectors/{name}              → 204
//! errors: {"error_code":<HTTP status>,"message":"..."}
//! ```
//!
//! Served by `REST_THREADS` plain threads sharing one tiny_http server (never a broker
//! shard); a request body over `REST_BODY_BYTES_MAX` is refused.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response, Server};

use super::config::ConnectorConfig;
use super::task::Target;
use super::worker::Worker;

const REST_THREADS: usize = 2;
const REST_BODY_BYTES_MAX: u64 = 1 << 20;

/// An answer: HTTP status and JSON body (None: no body).
type Reply = (u16, Option<Value>);

pub struct Rest {
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
}

struct State {
    worker: Arc<Worker>,
    /// The broker cluster's id, once a Metadata answer named it.
    cluster_id: Mutex<Option<String>>,
}

impl Rest {
    pub fn start(worker: Arc<Worker>) -> Result<Rest, String> {
        let addr = worker.config.rest_addr;
        let server = Server::http(addr).map_err(|e| {
            format!("cannot serve the REST API on {addr}: {e} (set listeners=http://host:port in the worker properties)")
        })?;
        let server = Arc::new(server);
        let state = Arc::new(State {
            worker,
            cluster_id: Mutex::new(None),
        });
        let threads = (0..REST_THREADS)
            .map(|i| {
                let server = Arc::clone(&server);
                let state = Arc::clone(&state);
                std::thread::Builder::new()
                    .name(format!("connect-rest-{i}"))
                    .spawn(move || {
                        while let Ok(req) = server.recv() {
                            serve(&state, req);
                        }
                    })
                    .map_err(|e| format!("cannot start a REST thread: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Rest { server, threads })
    }

    /// Stops accepting and waits for the threads (each finishes its request first).
    pub fn stop(self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn serve(state: &State, mut req: Request) {
    let mut body = Vec::new();
    let read = req
        .as_reader()
        .take(REST_BODY_BYTES_MAX + 1)
        .read_to_end(&mut body);
    let (status, value) = match read {
        Err(e) => error(400, &format!("cannot read the request body: {e}")),
        Ok(_) if body.len() as u64 > REST_BODY_BYTES_MAX => error(
            413,
            &format!("request body over {REST_BODY_BYTES_MAX} bytes"),
        ),
        Ok(_) => route(state, req.method(), req.url(), &body),
    };
    let response = match value {
        Some(v) => Response::from_string(v.to_string())
            .with_status_code(status)
            .with_header(
                Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                    .expect("a valid header"),
            ),
        None => Response::from_string(String::new()).with_status_code(status),
    };
    if let Err(e) = req.respond(response) {
        tracing::debug!("REST: answering a request: {e}");
    }
}

fn error(status: u16, message: &str) -> Reply {
    (
        status,
        Some(json!({"error_code": status, "message": message})),
    )
}

fn not_found(name: &str) -> Reply {
    error(404, &format!("Connector {name} not found"))
}

/// Decodes %XX escapes of a path segment (connector names may hold any character).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(state: &State, method: &Method, url: &str, body: &[u8]) -> Reply {
    let path = url.split('?').next().unwrap_or("");
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let w = &state.worker;
    match (method, segs.as_slice()) {
        (Method::Get, []) => (200, Some(root(state))),
        (Method::Get, ["connector-plugins"]) => (200, Some(plugins())),
        (Method::Get, ["connectors"]) => (200, Some(list(w, url))),
        (Method::Post, ["connectors"]) => create(w, body),
        (Method::Get, ["connectors", name]) => match w.config(name) {
            Some(cfg) => (200, Some(info(&cfg))),
            None => not_found(name),
        },
        (Method::Delete, ["connectors", name]) => {
            if w.delete(name) {
                (204, None)
            } else {
                not_found(name)
            }
        }
        (Method::Get, ["connectors", name, "config"]) => match w.config(name) {
            Some(cfg) => (200, Some(json!(cfg.props))),
            None => not_found(name),
        },
        (Method::Put, ["connectors", name, "config"]) => put_config(w, name, body),
        (Method::Get, ["connectors", name, "status"]) => match status_json(w, name) {
            Some(v) => (200, Some(v)),
            None => not_found(name),
        },
        (Method::Get, ["connectors", name, "tasks"]) => match w.config(name) {
            Some(cfg) => (200, Some(tasks(&cfg))),
            None => not_found(name),
        },
        (Method::Get, ["connectors", name, "tasks", "0", "status"]) => match status_json(w, name) {
            Some(v) => (200, Some(v["tasks"][0].clone())),
            None => not_found(name),
        },
        (Method::Put, ["connectors", name, "pause"]) => pause_resume(w, name, Target::Pause),
        (Method::Put, ["connectors", name, "resume"]) => pause_resume(w, name, Target::Run),
        (Method::Post, ["connectors", name, "restart"])
        | (Method::Post, ["connectors", name, "tasks", "0", "restart"]) => {
            if w.restart(name) {
                (204, None)
            } else {
                not_found(name)
            }
        }
        (Method::Post, ["connectors", name, "tasks", task, "restart"]) => {
            if w.config(name).is_none() {
                not_found(name)
            } else {
                error(404, &format!("Task {name}-{task} not found"))
            }
        }
        (_, ["connectors", ..]) | (_, []) | (_, ["connector-plugins"]) => {
            error(405, "HTTP 405 Method Not Allowed")
        }
        _ => error(404, "HTTP 404 Not Found"),
    }
}

fn root(state: &State) -> Value {
    let mut id = state.cluster_id.lock().unwrap_or_else(|p| p.into_inner());
    if id.is_none() {
        // Asked of the broker on first need; null while it does not answer.
        *id = crate::cli::client::Cluster::connect(&state.worker.config.bootstrap)
            .ok()
            .and_then(|mut c| c.metadata(Some(&[]), false).ok())
            .and_then(|md| md.cluster_id.map(|s| s.to_string()));
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": "corelog",
        "kafka_cluster_id": *id,
    })
}

fn plugins() -> Value {
    let v = env!("CARGO_PKG_VERSION");
    json!([
        {"class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "type": "sink", "version": v},
        {"class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "type": "source", "version": v},
    ])
}

fn info(cfg: &ConnectorConfig) -> Value {
    json!({
        "name": cfg.name,
        "config": cfg.props,
        "tasks": [{"connector": cfg.name, "task": 0}],
        "type": cfg.kind.type_name(),
    })
}

/// `GET /connectors`: the names, or with `?expand=status` / `?expand=info` (both may be
/// given) a map of name → {"status":..,"info":..}, as Kafka answers.
fn list(w: &Worker, url: &str) -> Value {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let expand: Vec<&str> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("expand="))
        .collect();
    let names = w.names();
    if expand.is_empty() {
        return json!(names);
    }
    let mut out = serde_json::Map::new();
    for name in names {
        let mut entry = serde_json::Map::new();
        if expand.contains(&"status") {
            if let Some(s) = status_json(w, &name) {
                entry.insert("status".into(), s);
            }
        }
        if expand.contains(&"info") {
            if let Some(cfg) = w.config(&name) {
                entry.insert("info".into(), info(&cfg));
            }
        }
        out.insert(name, Value::Object(entry));
    }
    Value::Object(out)
}

/// The one task's id and config (the connector's keys plus `task.class`, as Kafka's
/// file connectors hand their task).
fn tasks(cfg: &ConnectorConfig) -> Value {
    let mut config = json!(cfg.props);
    config["task.class"] = json!(match cfg.kind {
        super::config::ConnectorKind::FileSource =>
            "org.apache.kafka.connect.file.FileStreamSourceTask",
        super::config::ConnectorKind::FileSink =>
            "org.apache.kafka.connect.file.FileStreamSinkTask",
    });
    json!([{"id": {"connector": cfg.name, "task": 0}, "config": config}])
}

fn status_json(w: &Worker, name: &str) -> Option<Value> {
    let s = w.status(name)?;
    let id = &w.config.worker_id;
    let mut task = json!({"id": 0, "state": s.task_state, "worker_id": id});
    if let Some(trace) = s.task_trace {
        task["trace"] = json!(trace);
    }
    Some(json!({
        "name": name,
        "connector": {"state": s.connector_state, "worker_id": id},
        "tasks": [task],
        "type": s.kind.type_name(),
    }))
}

fn pause_resume(w: &Worker, name: &str, target: Target) -> Reply {
    if w.set_target(name, target) {
        (202, None)
    } else {
        not_found(name)
    }
}

/// A JSON object of string values (numbers and booleans are taken as their text, as
/// Kafka's config parsing does).
fn config_map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let obj = v.as_object().ok_or("the config must be a JSON object")?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(format!("config key {k}: expected a string")),
        })
        .collect()
}

fn parse_body(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body)
        .map_err(|e| error(400, &format!("the request body is not JSON: {e}")))
}

fn validated(w: &Worker, props: BTreeMap<String, String>) -> Result<ConnectorConfig, Reply> {
    ConnectorConfig::from_properties("REST request", props, &w.config)
        .map_err(|e| error(400, &format!("Connector configuration is invalid: {e}")))
}

fn put_config(w: &Worker, name: &str, body: &[u8]) -> Reply {
    let doc = match parse_body(body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut props = match config_map(&doc) {
        Ok(p) => p,
        Err(why) => return error(400, &why),
    };
    match props.get("name") {
        Some(n) if n != name => {
            return error(
                400,
                &format!("Connector name configuration ({n}) doesn't match connector name in the URL ({name})"),
            )
        }
        Some(_) => {}
        None => {
            props.insert("name".into(), name.to_string());
        }
    }
    let cfg = match validated(w, props) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = info(&cfg);
    let created = w.put(cfg);
    (if created { 201 } else { 200 }, Some(body))
}

fn create(w: &Worker, body: &[u8]) -> Reply {
    let doc = match parse_body(body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(name) = doc.get("name").and_then(Value::as_str) else {
        return error(400, "the request needs a \"name\"");
    };
    let mut props = match doc.get("config").map(config_map) {
        Some(Ok(p)) => p,
        Some(Err(why)) => return error(400, &why),
        None => return error(400, "the request needs a \"config\" object"),
    };
    props.insert("name".into(), name.to_string());
    if w.config(name).is_some() {
        return error(409, &format!("Connector {name} already exists"));
    }
    let cfg = match validated(w, props) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = info(&cfg);
    w.put(cfg);
    (201, Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("my%20sink"), "my sink");
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn config_values_are_text() {
        let m = config_map(&json!({"tasks.max": 1, "file": "f", "x": true})).unwrap();
        assert_eq!(m["tasks.max"], "1");
        assert_eq!(m["x"], "true");
        assert!(config_map(&json!({"a": [1]})).is_err());
        assert!(config_map(&json!([1])).is_err());
    }
}
