//! The two kinds of properties file `corelog connect standalone` reads, with Kafka
//! Connect's key names: the worker's (connect-standalone.properties) and one per
//! connector (connect-file-source.properties, ...). Defaults and validation live here;
//! unknown keys are warned about, never silently dropped.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::converters::Converter;

/// Kafka's default: the REST API on every interface, port 8083.
pub const LISTENERS_DEFAULT: &str = "http://:8083";
/// Kafka's default offset.flush.interval.ms.
pub const OFFSET_FLUSH_INTERVAL_DEFAULT_MS: u64 = 60_000;
/// FileStreamSource's default batch.size (lines per poll).
pub const SOURCE_BATCH_LINES_DEFAULT: usize = 2000;
/// A batch.size above this would hold too many lines in memory at once.
pub const SOURCE_BATCH_LINES_MAX: usize = 100_000;

/// Worker keys Kafka knows that a standalone worker of two file connectors has no use
/// for: accepted without a warning, not applied.
const WORKER_KEYS_IGNORED: [&str; 9] = [
    "plugin.path",
    "offset.flush.timeout.ms",
    "internal.key.converter",
    "internal.value.converter",
    "internal.key.converter.schemas.enable",
    "internal.value.converter.schemas.enable",
    "rest.host.name",
    "rest.port",
    "task.shutdown.graceful.timeout.ms",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{file}: {why}")]
    Invalid { file: String, why: String },
}

fn invalid(file: &str, why: String) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        why,
    }
}

/// The producer and consumer settings a worker applies from `producer.*` / `consumer.*`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOverrides {
    /// producer.acks: -1 (all, Kafka Connect's default), 0 or 1.
    pub acks: i16,
    /// producer.compression.type
    pub compression: kafka_protocol::records::Compression,
    /// consumer.auto.offset.reset: true for earliest (Kafka Connect's default).
    pub from_earliest: bool,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap: String,
    pub key_converter: Converter,
    pub value_converter: Converter,
    pub offset_file: PathBuf,
    pub offset_flush_interval: Duration,
    /// Where the REST API listens.
    pub rest_addr: SocketAddr,
    /// host:port that names this worker in status replies (Kafka's worker_id).
    pub worker_id: String,
    pub clients: ClientOverrides,
    /// Every key as read, for converter settings a connector does not override.
    pub props: BTreeMap<String, String>,
}

/// Reads a Java properties file into a map (the broker's parser: `=` or `:`, comments,
/// continuations).
pub fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(&file, format!("cannot read it: {e}")))?;
    let mut props = BTreeMap::new();
    crate::config::parse_properties(&text, &file, &mut props)
        .map_err(|e| invalid(&file, e.to_string()))?;
    Ok(props)
}

fn parse_bool(file: &str, key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(file, format!("{key}={v}: expected true or false"))),
    }
}

fn parse_u64(file: &str, key: &str, v: &str) -> Result<u64, ConfigError> {
    v.parse()
        .map_err(|_| invalid(file, format!("{key}={v}: expected a whole number")))
}

/// The converter that `prefix` (key.converter / value.converter) names in `props`,
/// with its `<prefix>.schemas.enable`; `fallback` when the key is absent.
pub fn converter(
    file: &str,
    props: &BTreeMap<String, String>,
    prefix: &str,
    fallback: Option<&Converter>,
) -> Result<Option<Converter>, ConfigError> {
    let schemas_key = format!("{prefix}.schemas.enable");
    let schemas = props
        .get(&schemas_key)
        .map(|v| parse_bool(file, &schemas_key, v))
        .transpose()?;
    let Some(class) = props.get(prefix) else {
        return Ok(fallback.map(|c| match (c, schemas) {
            (Converter::Json { .. }, Some(s)) => Converter::Json { schemas: s },
            (c, _) => c.clone(),
        }));
    };
    Converter::from_class(class, schemas.unwrap_or(true))
        .map(Some)
        .ok_or_else(|| {
            invalid(
                file,
                format!(
                    "{prefix}={class}: unknown converter (known: JsonConverter, StringConverter, ByteArrayConverter, by short or full class name)"
                ),
            )
        })
}

/// `listeners` (`http://host:port`, first one only) → the address to bind and the
/// worker id. An empty host binds every interface, as Kafka does.
fn parse_listener(file: &str, v: &str) -> Result<(SocketAddr, String), ConfigError> {
    let first = v.split(',').next().unwrap_or("").trim();
    let lower = first.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").ok_or_else(|| {
        invalid(
            file,
            format!("listeners={v}: expected http://host:port (https is not served)"),
        )
    })?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid(file, format!("listeners={v}: no port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(file, format!("listeners={v}: bad port {port:?}")))?;
    let bind_host = if host.is_empty() { "0.0.0.0" } else { host };
    let addr = (bind_host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| invalid(file, format!("listeners={v}: cannot resolve {bind_host}")))?;
    let id_host = if host.is_empty() || host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        host
    };
    Ok((addr, format!("{id_host}:{port}")))
}

fn parse_overrides(
    file: &str,
    props: &BTreeMap<String, String>,
) -> Result<ClientOverrides, ConfigError> {
    let mut o = ClientOverrides {
        acks: -1,
        compression: kafka_protocol::records::Compression::None,
        from_earliest: true,
    };
    for (k, v) in props {
        match k.as_str() {
            "producer.acks" => {
                o.acks = match v.as_str() {
                    "all" | "-1" => -1,
                    "1" => 1,
                    "0" => 0,
                    _ => return Err(invalid(file, format!("{k}={v}: expected all, 1 or 0"))),
                }
            }
            "producer.compression.type" => {
                o.compression = crate::cli::records::parse_compression(v).ok_or_else(|| {
                    invalid(file, format!("{k}={v}: expected none, gzip, snappy, lz4 or zstd"))
                })?
            }
            "consumer.auto.offset.reset" => {
                o.from_earliest = match v.as_str() {
                    "earliest" => true,
                    "latest" => false,
                    _ => return Err(invalid(file, format!("{k}={v}: expected earliest or latest"))),
                }
            }
            _ if k.starts_with("producer.") || k.starts_with("consumer.") => tracing::warn!(
                "{file}: {k} is not applied (corelog connect applies producer.acks, producer.compression.type and consumer.auto.offset.reset)"
            ),
            _ => {}
        }
    }
    Ok(o)
}

impl WorkerConfig {
    pub fn from_properties(
        file: &str,
        props: BTreeMap<String, String>,
    ) -> Result<WorkerConfig, ConfigError> {
        let need = |k: &str| {
            props
                .get(k)
                .cloned()
                .ok_or_else(|| invalid(file, format!("{k} is required")))
        };
        let bootstrap = props
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_else(|| "localhost:9092".to_string());
        let key_converter = converter(file, &props, "key.converter", None)?
            .ok_or_else(|| invalid(file, "key.converter is required".into()))?;
        let value_converter = converter(file, &props, "value.converter", None)?
            .ok_or_else(|| invalid(file, "value.converter is required".into()))?;
        let offset_file = PathBuf::from(need("offset.storage.file.filename")?);
        let flush_ms = props
            .get("offset.flush.interval.ms")
            .map(|v| parse_u64(file, "offset.flush.interval.ms", v))
            .transpose()?
            .unwrap_or(OFFSET_FLUSH_INTERVAL_DEFAULT_MS);
        let listeners = props
            .get("listeners")
            .map_or(LISTENERS_DEFAULT, String::as_str);
        let (rest_addr, mut worker_id) = parse_listener(file, listeners)?;
        if let Some(h) = props.get("rest.advertised.host.name") {
            worker_id = format!("{h}:{}", rest_addr.port());
        }
        let clients = parse_overrides(file, &props)?;
        warn_unknown_worker_keys(file, &props);
        Ok(WorkerConfig {
            bootstrap,
            key_converter,
            value_converter,
            offset_file,
            offset_flush_interval: Duration::from_millis(flush_ms),
            rest_addr,
            worker_id,
            clients,
            props,
        })
    }
}

fn warn_unknown_worker_keys(file: &str, props: &BTreeMap<String, String>) {
    const KNOWN: [&str; 10] = [
        "bootstrap.servers",
        "key.converter",
        "value.converter",
        "key.converter.schemas.enable",
        "value.converter.schemas.enable",
        "offset.storage.file.filename",
        "offset.flush.interval.ms",
        "listeners",
        "rest.advertised.host.name",
        "rest.advertised.port",
    ];
    for k in props.keys() {
        let known = KNOWN.contains(&k.as_str())
            || WORKER_KEYS_IGNORED.contains(&k.as_str())
            || k.starts_with("producer.")
            || k.starts_with("consumer.");
        if !known {
            tracing::warn!("{file}: unknown worker key {k} (ignored)");
        }
    }
}

/// Which connector a connector.class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    FileSource,
    FileSink,
}

impl ConnectorKind {
    /// Kafka's full class names and the short forms Kafka also accepts.
    pub fn from_class(class: &str) -> Option<ConnectorKind> {
        match class {
            "org.apache.kafka.connect.file.FileStreamSourceConnector"
            | "FileStreamSourceConnector"
            | "FileStreamSource" => Some(ConnectorKind::FileSource),
            "org.apache.kafka.connect.file.FileStreamSinkConnector"
            | "FileStreamSinkConnector"
            | "FileStreamSink" => Some(ConnectorKind::FileSink),
            _ => None,
        }
    }

    /// "source" / "sink", as the REST API names connector types.
    pub fn type_name(self) -> &'static str {
        match self {
            ConnectorKind::FileSource => "source",
            ConnectorKind::FileSink => "sink",
        }
    }
}

/// Which topics a sink reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkTopics {
    List(Vec<String>),
    Regex(String),
}

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: ConnectorKind,
    pub file: Option<PathBuf>,
    /// Source: the topic lines go to.
    pub topic: String,
    pub batch_lines: usize,
    pub sink_topics: SinkTopics,
    pub key_converter: Converter,
    pub value_converter: Converter,
    /// Every key as given: GET /connectors/{name}/config answers with these.
    pub props: BTreeMap<String, String>,
}

const CONNECTOR_KEYS: [&str; 14] = [
    "name",
    "connector.class",
    "tasks.max",
    "file",
    "topic",
    "batch.size",
    "topics",
    "topics.regex",
    "key.converter",
    "value.converter",
    "key.converter.schemas.enable",
    "value.converter.schemas.enable",
    "errors.tolerance",
    "errors.log.enable",
];

impl ConnectorConfig {
    pub fn from_properties(
        file: &str,
        props: BTreeMap<String, String>,
        worker: &WorkerConfig,
    ) -> Result<ConnectorConfig, ConfigError> {
        let name = props
            .get("name")
            .filter(|n| !n.trim().is_empty())
            .cloned()
            .ok_or_else(|| invalid(file, "name is required".into()))?;
        if name.contains('/') {
            return Err(invalid(file, format!("name={name}: may not contain '/'")));
        }
        let class = props
            .get("connector.class")
            .ok_or_else(|| invalid(file, "connector.class is required".into()))?;
        let kind = ConnectorKind::from_class(class).ok_or_else(|| {
            invalid(
                file,
                format!(
                    "connector.class={class}: corelog connect runs FileStreamSource and FileStreamSink only (no plugins)"
                ),
            )
        })?;
        if let Some(t) = props.get("tasks.max") {
            let n = parse_u64(file, "tasks.max", t)?;
            if n == 0 {
                return Err(invalid(file, "tasks.max=0: at least one task".into()));
            }
            if n > 1 {
                tracing::info!("{file}: tasks.max={n}: a file connector runs one task");
            }
        }
        let file_path = props
            .get("file")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        let topic = props.get("topic").cloned().unwrap_or_default();
        let batch_lines = match props.get("batch.size") {
            Some(v) => parse_u64(file, "batch.size", v)? as usize,
            None => SOURCE_BATCH_LINES_DEFAULT,
        };
        if batch_lines == 0 || batch_lines > SOURCE_BATCH_LINES_MAX {
            return Err(invalid(
                file,
                format!("batch.size={batch_lines}: must be between 1 and {SOURCE_BATCH_LINES_MAX}"),
            ));
        }
        let sink_topics = sink_topics(file, &props, kind)?;
        if kind == ConnectorKind::FileSource {
            if topic.is_empty() {
                return Err(invalid(
                    file,
                    "topic is required for FileStreamSource".into(),
                ));
            }
            if file_path.is_none() {
                // Kafka reads stdin then; a worker with a REST API has no terminal to read.
                return Err(invalid(
                    file,
                    "file is required (corelog does not read stdin as a source)".into(),
                ));
            }
        }
        if kind == ConnectorKind::FileSink && file_path.is_none() {
            return Err(invalid(
                file,
                "file is required (corelog does not write a sink to stdout)".into(),
            ));
        }
        let key_converter = converter(file, &props, "key.converter", Some(&worker.key_converter))?
            .expect("a fallback is given");
        let value_converter = converter(
            file,
            &props,
            "value.converter",
            Some(&worker.value_converter),
        )?
        .expect("a fallback is given");
        for k in props.keys() {
            if !CONNECTOR_KEYS.contains(&k.as_str()) {
                tracing::warn!("{file}: unknown connector key {k} (ignored)");
            }
        }
        Ok(ConnectorConfig {
            name,
            kind,
            file: file_path,
            topic,
            batch_lines,
            sink_topics,
            key_converter,
            value_converter,
            props,
        })
    }
}

fn sink_topics(
    file: &str,
    props: &BTreeMap<String, String>,
    kind: ConnectorKind,
) -> Result<SinkTopics, ConfigError> {
    let list: Vec<String> = props
        .get("topics")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let regex = props.get("topics.regex").filter(|r| !r.is_empty());
    if kind == ConnectorKind::FileSource {
        return Ok(SinkTopics::List(list));
    }
    match (list.is_empty(), regex) {
        (false, Some(_)) => Err(invalid(
            file,
            "topics and topics.regex are both set: give one".into(),
        )),
        (true, None) => Err(invalid(file, "topics or topics.regex is required".into())),
        (true, Some(r)) => {
            regex::Regex::new(r).map_err(|e| invalid(file, format!("topics.regex={r}: {e}")))?;
            Ok(SinkTopics::Regex(r.clone()))
        }
        (false, None) => Ok(SinkTopics::List(list)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Kafka's stock connect-standalone.properties.
    fn stock_worker() -> WorkerConfig {
        WorkerConfig::from_properties(
            "w",
            props(&[
                ("bootstrap.servers", "localhost:9092"),
                (
                    "key.converter",
                    "org.apache.kafka.connect.json.JsonConverter",
                ),
                (
                    "value.converter",
                    "org.apache.kafka.connect.json.JsonConverter",
                ),
                ("key.converter.schemas.enable", "true"),
                ("value.converter.schemas.enable", "true"),
                ("offset.storage.file.filename", "/tmp/connect.offsets"),
                ("offset.flush.interval.ms", "10000"),
            ]),
        )
        .unwrap()
    }

    #[test]
    fn stock_worker_file() {
        let w = stock_worker();
        assert_eq!(w.value_converter, Converter::Json { schemas: true });
        assert_eq!(w.offset_flush_interval, Duration::from_millis(10_000));
        assert_eq!(w.rest_addr.port(), 8083);
        assert!(w.rest_addr.ip().is_unspecified());
        assert_eq!(w.worker_id, "127.0.0.1:8083");
        assert_eq!(w.clients.acks, -1);
    }

    #[test]
    fn listener_and_overrides() {
        let w = WorkerConfig::from_properties(
            "w",
            props(&[
                ("key.converter", "StringConverter"),
                ("value.converter", "JsonConverter"),
                ("value.converter.schemas.enable", "false"),
                ("offset.storage.file.filename", "o"),
                ("listeners", "HTTP://127.0.0.1:18083"),
                ("producer.acks", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(w.rest_addr.to_string(), "127.0.0.1:18083");
        assert_eq!(w.worker_id, "127.0.0.1:18083");
        assert_eq!(w.key_converter, Converter::String);
        assert_eq!(w.value_converter, Converter::Json { schemas: false });
        assert_eq!(w.clients.acks, 1);
        let bad = WorkerConfig::from_properties(
            "w",
            props(&[
                ("key.converter", "x.Y"),
                ("value.converter", "JsonConverter"),
            ]),
        );
        assert!(
            matches!(bad, Err(ConfigError::Invalid { why, .. }) if why.contains("unknown converter"))
        );
    }

    #[test]
    fn stock_connector_files() {
        let w = stock_worker();
        let src = ConnectorConfig::from_properties(
            "s",
            props(&[
                ("name", "local-file-source"),
                ("connector.class", "FileStreamSource"),
                ("tasks.max", "1"),
                ("file", "test.txt"),
                ("topic", "connect-test"),
            ]),
            &w,
        )
        .unwrap();
        assert_eq!(src.kind, ConnectorKind::FileSource);
        assert_eq!(src.batch_lines, SOURCE_BATCH_LINES_DEFAULT);
        let sink = ConnectorConfig::from_properties(
            "k",
            props(&[
                ("name", "local-file-sink"),
                (
                    "connector.class",
                    "org.apache.kafka.connect.file.FileStreamSinkConnector",
                ),
                ("file", "test.sink.txt"),
                ("topics", "connect-test"),
                ("value.converter", "StringConverter"),
            ]),
            &w,
        )
        .unwrap();
        assert_eq!(sink.kind, ConnectorKind::FileSink);
        assert_eq!(
            sink.sink_topics,
            SinkTopics::List(vec!["connect-test".into()])
        );
        assert_eq!(sink.value_converter, Converter::String);
        assert_eq!(sink.key_converter, Converter::Json { schemas: true });
    }

    #[test]
    fn connector_errors_name_the_key() {
        let w = stock_worker();
        let err = |pairs: &[(&str, &str)]| match ConnectorConfig::from_properties(
            "c",
            props(pairs),
            &w,
        ) {
            Err(ConfigError::Invalid { why, .. }) => why,
            Ok(_) => panic!("accepted {pairs:?}"),
        };
        assert!(err(&[("connector.class", "FileStreamSource")]).contains("name"));
        assert!(err(&[("name", "n"), ("connector.class", "com.x.Jdbc")]).contains("no plugins"));
        assert!(err(&[
            ("name", "n"),
            ("connector.class", "FileStreamSink"),
            ("file", "f")
        ])
        .contains("topics or topics.regex"));
        assert!(err(&[
            ("name", "n"),
            ("connector.class", "FileStreamSink"),
            ("file", "f"),
            ("topics.regex", "(")
        ])
        .contains("topics.regex"));
    }
}
