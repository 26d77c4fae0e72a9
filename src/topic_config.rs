//! Topic configs: Kafka's names, defaults and validation, and where each value comes from.
//!
//! A topic's value for a config is, first found wins (Kafka's order, and the order
//! DescribeConfigs lists synonyms in):
//!
//! 1. the topic's override (`DYNAMIC_TOPIC_CONFIG`), set at CreateTopics or by
//!    (Incremental)AlterConfigs;
//! 2. a dynamic broker config for this node (`DYNAMIC_BROKER_CONFIG`), then the dynamic
//!    cluster-wide default (`DYNAMIC_DEFAULT_BROKER_CONFIG`), both set by AlterConfigs on
//!    a BROKER resource;
//! 3. the broker property from server.properties / `--override` (`STATIC_BROKER_CONFIG`),
//!    including unit synonyms (`log.retention.hours` for `retention.ms`);
//! 4. Kafka's default (`DEFAULT_CONFIG`).
//!
//! Overrides are kept as validated strings in the metadata snapshot (persisted with it);
//! [`TopicSettings`] is the typed view the storage layer runs with.

use std::collections::BTreeMap;

/// Kafka's `ConfigSource` values (DescribeConfigs v1+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Source {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// Kafka's `ConfigType` values (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// What values a config takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Long {
        min: i64,
        max: i64,
    },
    Int {
        min: i64,
        max: i64,
    },
    Double {
        min: f64,
        max: f64,
    },
    Bool,
    /// Exactly one of these (case-sensitive, as Kafka).
    Choice(&'static [&'static str]),
    /// A comma-separated, non-empty list of these.
    List(&'static [&'static str]),
}

impl Kind {
    pub fn config_type(self) -> ConfigType {
        match self {
            Kind::Long { .. } => ConfigType::Long,
            Kind::Int { .. } => ConfigType::Int,
            Kind::Double { .. } => ConfigType::Double,
            Kind::Bool => ConfigType::Boolean,
            Kind::Choice(_) => ConfigType::String,
            Kind::List(_) => ConfigType::List,
        }
    }
}

/// A broker property that sets a topic config's default, with the factor that turns
/// its unit into the topic config's (`log.retention.hours` → ms: 3,600,000).
#[derive(Debug, Clone, Copy)]
pub struct BrokerKey {
    pub name: &'static str,
    pub factor: i64,
}

const fn key(name: &'static str) -> BrokerKey {
    BrokerKey { name, factor: 1 }
}

/// One topic config.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    /// Kafka's default, in the topic config's unit.
    pub default: &'static str,
    /// Broker properties that set the default for every topic, highest precedence
    /// first. The first is the one AlterConfigs on a BROKER resource may change.
    pub broker_keys: &'static [BrokerKey],
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";
const NON_NEG: Kind = Kind::Long {
    min: 0,
    max: i64::MAX,
};
const POSITIVE: Kind = Kind::Long {
    min: 1,
    max: i64::MAX,
};
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
pub const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every topic config corelog knows, in Kafka's (alphabetical) order.
pub static DEFS: &[Def] = &[
    Def {
        name: "cleanup.policy",
        kind: Kind::List(CLEANUP_POLICIES),
        default: "delete",
        broker_keys: &[key("log.cleanup.policy")],
        doc: "\"delete\" discards old segments by retention.ms/retention.bytes; \"compact\" keeps the latest value per key; both may be given.",
    },
    Def {
        name: "compression.type",
        kind: Kind::Choice(COMPRESSION_TYPES),
        default: "producer",
        broker_keys: &[key("compression.type")],
        doc: "The codec batches are stored with; \"producer\" keeps the producer's, any other value makes the broker recompress batches that arrive with another codec.",
    },
    Def {
        name: "delete.retention.ms",
        kind: NON_NEG,
        default: "86400000",
        broker_keys: &[key("log.cleaner.delete.retention.ms")],
        doc: "How long tombstones stay in a compacted topic after the cleaner has passed them.",
    },
    Def {
        name: "file.delete.delay.ms",
        kind: NON_NEG,
        default: "60000",
        broker_keys: &[key("log.segment.delete.delay.ms")],
        doc: "Accepted for compatibility; corelog unlinks deleted segments at once (open readers keep their file handles).",
    },
    Def {
        name: "flush.messages",
        kind: POSITIVE,
        default: LONG_MAX,
        broker_keys: &[key("log.flush.interval.messages")],
        doc: "fdatasync after this many messages even without an acks=all producer waiting (acks=all is always answered after fdatasync).",
    },
    Def {
        name: "flush.ms",
        kind: NON_NEG,
        default: LONG_MAX,
        broker_keys: &[key("log.flush.interval.ms")],
        doc: "fdatasync written data at least this often even without an acks=all producer waiting.",
    },
    Def {
        name: "index.interval.bytes",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "4096",
        broker_keys: &[key("log.index.interval.bytes")],
        doc: "Log bytes between two offset index entries.",
    },
    Def {
        name: "max.compaction.lag.ms",
        kind: POSITIVE,
        default: LONG_MAX,
        broker_keys: &[key("log.cleaner.max.compaction.lag.ms")],
        doc: "The longest a record stays uncompacted in a compacted topic.",
    },
    Def {
        name: "max.message.bytes",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "1048588",
        broker_keys: &[key("message.max.bytes")],
        doc: "The largest record batch (after compression) the topic accepts.",
    },
    Def {
        name: "message.downconversion.enable",
        kind: Kind::Bool,
        default: "true",
        broker_keys: &[key("log.message.downconversion.enable")],
        doc: "Whether Fetch v0-3 (clients that read message formats v0/v1 only) get record batches converted down; false answers them UNSUPPORTED_VERSION for this topic.",
    },
    Def {
        name: "message.timestamp.after.max.ms",
        kind: NON_NEG,
        default: "3600000",
        broker_keys: &[key("log.message.timestamp.after.max.ms")],
        doc: "With CreateTime, a batch whose timestamp is further than this in the future is refused with INVALID_TIMESTAMP.",
    },
    Def {
        name: "message.timestamp.before.max.ms",
        kind: NON_NEG,
        default: LONG_MAX,
        broker_keys: &[key("log.message.timestamp.before.max.ms")],
        doc: "With CreateTime, a batch whose timestamp is further than this in the past is refused with INVALID_TIMESTAMP.",
    },
    Def {
        name: "message.timestamp.type",
        kind: Kind::Choice(TIMESTAMP_TYPES),
        default: "CreateTime",
        broker_keys: &[key("log.message.timestamp.type")],
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock at append.",
    },
    Def {
        name: "min.cleanable.dirty.ratio",
        kind: Kind::Double { min: 0.0, max: 1.0 },
        default: "0.5",
        broker_keys: &[key("log.cleaner.min.cleanable.ratio")],
        doc: "The share of a compacted log not yet cleaned above which the cleaner cleans it.",
    },
    Def {
        name: "min.compaction.lag.ms",
        kind: NON_NEG,
        default: "0",
        broker_keys: &[key("log.cleaner.min.compaction.lag.ms")],
        doc: "The shortest a record stays uncompacted in a compacted topic.",
    },
    Def {
        name: "min.insync.replicas",
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        default: "1",
        broker_keys: &[key("min.insync.replicas")],
        doc: "Replicas that must hold a write before acks=all is answered; one broker holds one replica, so above 1 acks=all gets NOT_ENOUGH_REPLICAS, as in Kafka.",
    },
    Def {
        name: "preallocate",
        kind: Kind::Bool,
        default: "false",
        broker_keys: &[key("log.preallocate")],
        doc: "Accepted for compatibility; corelog always preallocates segment files ahead of the writer.",
    },
    Def {
        name: "retention.bytes",
        kind: Kind::Long {
            min: -1,
            max: i64::MAX,
        },
        default: "-1",
        broker_keys: &[key("log.retention.bytes")],
        doc: "Delete the oldest segments while the partition is larger than this; -1: no limit.",
    },
    Def {
        name: "retention.ms",
        kind: Kind::Long {
            min: -1,
            max: i64::MAX,
        },
        default: "604800000",
        broker_keys: &[
            key("log.retention.ms"),
            BrokerKey {
                name: "log.retention.minutes",
                factor: 60_000,
            },
            BrokerKey {
                name: "log.retention.hours",
                factor: 3_600_000,
            },
        ],
        doc: "Delete segments whose newest record is older than this; -1: no limit.",
    },
    Def {
        name: "segment.bytes",
        kind: Kind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
        default: "1073741824",
        broker_keys: &[key("log.segment.bytes")],
        doc: "Roll to a new segment before the active one grows past this.",
    },
    Def {
        name: "segment.index.bytes",
        kind: Kind::Int {
            min: 4,
            max: i32::MAX as i64,
        },
        default: "10485760",
        broker_keys: &[key("log.index.size.max.bytes")],
        doc: "Largest offset index per segment; a full index rolls the segment.",
    },
    Def {
        name: "segment.jitter.ms",
        kind: NON_NEG,
        default: "0",
        broker_keys: &[
            key("log.roll.jitter.ms"),
            BrokerKey {
                name: "log.roll.jitter.hours",
                factor: 3_600_000,
            },
        ],
        doc: "A random amount up to this is taken off segment.ms per segment, so partitions do not roll together.",
    },
    Def {
        name: "segment.ms",
        kind: POSITIVE,
        default: "604800000",
        broker_keys: &[
            key("log.roll.ms"),
            BrokerKey {
                name: "log.roll.hours",
                factor: 3_600_000,
            },
        ],
        doc: "Roll the active segment once it is this old, even if not full.",
    },
    Def {
        name: "unclean.leader.election.enable",
        kind: Kind::Bool,
        default: "false",
        broker_keys: &[key("unclean.leader.election.enable")],
        doc: "In a cluster: an offline partition (no live ISR member) gets a live out-of-sync replica as leader; records it lacks are lost.",
    },
];

pub fn def(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// The topic config a broker property is the default of, and its unit factor.
pub fn def_of_broker_key(name: &str) -> Option<(&'static Def, BrokerKey)> {
    DEFS.iter().find_map(|d| {
        d.broker_keys
            .iter()
            .find(|k| k.name == name)
            .map(|k| (d, *k))
    })
}

/// Checks `value` against `def` and returns it as stored (lists trimmed and
/// de-duplicated, in the given order). The error names the key and what is allowed.
pub fn validate(name: &str, kind: Kind, value: &str) -> Result<String, String> {
    let bad = |why: String| format!("Invalid value {value} for configuration {name}: {why}");
    let v = value.trim();
    match kind {
        Kind::Long { min, max } | Kind::Int { min, max } => {
            let n: i64 = v.parse().map_err(|_| {
                bad(if matches!(kind, Kind::Int { .. }) {
                    "Not a number of type INT".to_string()
                } else {
                    "Not a number of type LONG".to_string()
                })
            })?;
            if n < min {
                return Err(bad(format!("Value must be at least {min}")));
            }
            if n > max {
                return Err(bad(format!("Value must be no more than {max}")));
            }
            Ok(n.to_string())
        }
        Kind::Double { min, max } => {
            let x: f64 = v
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| bad("Not a number of type DOUBLE".into()))?;
            if x < min || x > max {
                return Err(bad(format!("Value must be between {min} and {max}")));
            }
            Ok(v.to_string())
        }
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(v.to_ascii_lowercase()),
            _ => Err(bad("Expected value to be either true or false".into())),
        },
        Kind::Choice(allowed) => {
            if allowed.contains(&v) {
                Ok(v.to_string())
            } else {
                Err(bad(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )))
            }
        }
        Kind::List(allowed) => {
            let mut items: Vec<&str> = Vec::new();
            for item in v.split(',').map(str::trim) {
                if !allowed.contains(&item) {
                    return Err(bad(format!(
                        "Invalid value {item}; the list may only contain: {}",
                        allowed.join(", ")
                    )));
                }
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            Ok(items.join(","))
        }
    }
}

/// Validates a topic override by name; unknown names are refused as Kafka refuses them.
pub fn validate_topic_override(name: &str, value: &str) -> Result<String, String> {
    use crate::replication::throttle;
    if throttle::TOPIC_KEYS.contains(&name) {
        return throttle::validate_replicas(name, value);
    }
    let def = def(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    validate(name, def.kind, value)
}

/// A value and where it came from, as DescribeConfigs shows synonyms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: String,
    pub source: Source,
}

/// The broker-side layers a topic config resolves through.
#[derive(Debug, Clone, Copy)]
pub struct BrokerLayers<'a> {
    /// AlterConfigs on this node's BROKER resource.
    pub dynamic_broker: &'a BTreeMap<String, String>,
    /// AlterConfigs on the default BROKER resource (empty name).
    pub dynamic_default: &'a BTreeMap<String, String>,
    /// server.properties and --override.
    pub static_props: &'a BTreeMap<String, String>,
}

impl BrokerLayers<'_> {
    /// Every place `def` is set at broker level, highest precedence first, with the
    /// value converted to the topic config's unit, ending with Kafka's default.
    pub fn synonyms(&self, def: &Def) -> Vec<Synonym> {
        let mut out = Vec::new();
        for (layer, source) in [
            (self.dynamic_broker, Source::DynamicBroker),
            (self.dynamic_default, Source::DynamicDefaultBroker),
            (self.static_props, Source::StaticBroker),
        ] {
            for k in def.broker_keys {
                if let Some(v) = layer.get(k.name) {
                    out.push(Synonym {
                        name: k.name.to_string(),
                        value: scaled(v, k.factor),
                        source,
                    });
                }
            }
        }
        // Kafka lists the default under the broker key that would change it.
        out.push(Synonym {
            name: def.broker_keys[0].name.to_string(),
            value: def.default.to_string(),
            source: Source::Default,
        });
        out
    }

    /// The synonyms of a topic config for a topic with `overrides`, first is effective.
    pub fn topic_synonyms(&self, def: &Def, overrides: &BTreeMap<String, String>) -> Vec<Synonym> {
        let mut out = Vec::new();
        if let Some(v) = overrides.get(def.name) {
            out.push(Synonym {
                name: def.name.to_string(),
                value: v.clone(),
                source: Source::DynamicTopic,
            });
        }
        out.extend(self.synonyms(def));
        out
    }

    /// The effective value of every topic config for a topic with `overrides`.
    pub fn settings(&self, overrides: &BTreeMap<String, String>) -> TopicSettings {
        let value = |name: &str| {
            let def = def(name).expect("a known topic config");
            self.topic_synonyms(def, overrides)
                .into_iter()
                .next()
                .map(|s| s.value)
                .unwrap_or_default()
        };
        TopicSettings::from_values(value)
    }
}

/// A broker value in another unit, e.g. hours → ms; unparsable values (refused at
/// start-up) are passed through.
fn scaled(v: &str, factor: i64) -> String {
    if factor == 1 {
        return v.trim().to_string();
    }
    match v.trim().parse::<i64>() {
        Ok(n) if n < 0 => n.to_string(),
        Ok(n) => n.saturating_mul(factor).to_string(),
        Err(_) => v.to_string(),
    }
}

/// Where batches are recompressed to (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Keep what the producer sent.
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The batch attributes' codec bits, `None` for `producer`.
    pub fn codec_bits(self) -> Option<u8> {
        match self {
            Compression::Producer => None,
            Compression::Uncompressed => Some(0),
            Compression::Gzip => Some(1),
            Compression::Snappy => Some(2),
            Compression::Lz4 => Some(3),
            Compression::Zstd => Some(4),
        }
    }
}

/// A topic's effective configuration, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    pub cleanup_delete: bool,
    pub cleanup_compact: bool,
    pub compression: Compression,
    pub delete_retention_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub index_interval_bytes: u32,
    pub max_compaction_lag_ms: i64,
    pub max_message_bytes: usize,
    pub downconversion_enable: bool,
    pub timestamp_after_max_ms: i64,
    pub timestamp_before_max_ms: i64,
    pub log_append_time: bool,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub min_insync_replicas: i32,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: u64,
    pub segment_index_bytes: u32,
    pub segment_jitter_ms: i64,
    pub segment_ms: i64,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings::from_values(|name| def(name).expect("known").default.to_string())
    }
}

impl TopicSettings {
    /// Builds the settings from a lookup of validated values; a value that does not
    /// parse falls back to Kafka's default (cannot happen for validated input).
    pub fn from_values(value: impl Fn(&str) -> String) -> TopicSettings {
        let long = |name: &str| -> i64 {
            value(name)
                .parse()
                .or_else(|_| def(name).expect("known").default.parse())
                .unwrap_or(0)
        };
        let policy = value("cleanup.policy");
        TopicSettings {
            cleanup_delete: policy.split(',').any(|p| p == "delete"),
            cleanup_compact: policy.split(',').any(|p| p == "compact"),
            compression: match value("compression.type").as_str() {
                "uncompressed" => Compression::Uncompressed,
                "gzip" => Compression::Gzip,
                "snappy" => Compression::Snappy,
                "lz4" => Compression::Lz4,
                "zstd" => Compression::Zstd,
                _ => Compression::Producer,
            },
            delete_retention_ms: long("delete.retention.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            index_interval_bytes: long("index.interval.bytes") as u32,
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            max_message_bytes: long("max.message.bytes") as usize,
            downconversion_enable: value("message.downconversion.enable")
                .eq_ignore_ascii_case("true"),
            timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            log_append_time: value("message.timestamp.type") == "LogAppendTime",
            min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio").parse().unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            min_insync_replicas: long("min.insync.replicas") as i32,
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: long("segment.bytes") as u64,
            segment_index_bytes: long("segment.index.bytes") as u32,
            segment_jitter_ms: long("segment.jitter.ms"),
            segment_ms: long("segment.ms"),
        }
    }
}

/// Validates the broker properties that are topic defaults (start-up and AlterConfigs
/// on a BROKER resource). Returns the first problem.
pub fn validate_broker_props(props: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in props {
        if let Some((def, bk)) = def_of_broker_key(k) {
            let kind = if bk.factor == 1 {
                def.kind
            } else {
                Kind::Long {
                    min: -1,
                    max: i64::MAX / bk.factor,
                }
            };
            validate(k, kind, v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas_and_valid() {
        for d in DEFS {
            assert_eq!(
                validate(d.name, d.kind, d.default).as_deref(),
                Ok(d.default)
            );
        }
        let s = TopicSettings::default();
        assert_eq!(s.retention_ms, 604_800_000);
        assert_eq!(s.max_message_bytes, 1_048_588);
        assert!(s.cleanup_delete && !s.cleanup_compact);
        assert_eq!(s.compression, Compression::Producer);
        assert!(!s.log_append_time);
    }

    #[test]
    fn validation_names_key_and_range() {
        let e = validate_topic_override("retention.ms", "-5").unwrap_err();
        assert!(
            e.contains("retention.ms") && e.contains("at least -1"),
            "{e}"
        );
        let e = validate_topic_override("max.message.bytes", "lots").unwrap_err();
        assert!(e.contains("max.message.bytes") && e.contains("INT"), "{e}");
        let e = validate_topic_override("compression.type", "brotli").unwrap_err();
        assert!(e.contains("one of") && e.contains("zstd"), "{e}");
        let e = validate_topic_override("no.such", "1").unwrap_err();
        assert_eq!(e, "Unknown topic config name: no.such");
        assert_eq!(
            validate_topic_override("cleanup.policy", " compact , delete,compact").unwrap(),
            "compact,delete"
        );
        assert!(validate_topic_override("cleanup.policy", "").is_err());
        assert!(validate_topic_override("min.cleanable.dirty.ratio", "1.5").is_err());
        assert_eq!(
            validate_topic_override("preallocate", "TRUE").unwrap(),
            "true"
        );
    }

    #[test]
    fn precedence_topic_dynamic_static_default() {
        let static_props = map(&[("log.retention.hours", "1"), ("message.max.bytes", "500")]);
        let dynamic_default = map(&[("message.max.bytes", "700")]);
        let empty = BTreeMap::new();
        let layers = BrokerLayers {
            dynamic_broker: &empty,
            dynamic_default: &dynamic_default,
            static_props: &static_props,
        };
        let s = layers.settings(&empty);
        assert_eq!(s.retention_ms, 3_600_000);
        assert_eq!(s.max_message_bytes, 700);
        let s = layers.settings(&map(&[("max.message.bytes", "128000")]));
        assert_eq!(s.max_message_bytes, 128_000);
        let syn = layers.topic_synonyms(def("max.message.bytes").unwrap(), &empty);
        let sources: Vec<_> = syn.iter().map(|s| (s.name.as_str(), s.source)).collect();
        assert_eq!(
            sources,
            vec![
                ("message.max.bytes", Source::DynamicDefaultBroker),
                ("message.max.bytes", Source::StaticBroker),
                ("message.max.bytes", Source::Default),
            ]
        );
    }

    #[test]
    fn broker_props_are_validated_in_their_unit() {
        assert!(validate_broker_props(&map(&[("log.retention.hours", "168")])).is_ok());
        assert!(validate_broker_props(&map(&[("log.retention.hours", "x")])).is_err());
        assert!(validate_broker_props(&map(&[("log.cleanup.policy", "shred")])).is_err());
        assert!(validate_broker_props(&map(&[("num.partitions", "x")])).is_ok());
    }

    /// A property in hours or minutes is bounded so that, scaled to ms, it still fits.
    #[test]
    fn per_unit_broker_props_are_bounded_by_their_factor() {
        let units = [
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
            ("log.roll.hours", 3_600_000),
            ("log.roll.jitter.hours", 3_600_000),
        ];
        for (key, factor) in units {
            let max = i64::MAX / factor;
            let at_max = max.to_string();
            assert_eq!(validate_broker_props(&map(&[(key, &at_max)])), Ok(()));
            assert_eq!(scaled(&at_max, factor), (max * factor).to_string());
            let over = (max + 1).to_string();
            let e = validate_broker_props(&map(&[(key, &over)])).unwrap_err();
            assert!(e.contains(key) && e.contains(&at_max), "{e}");
            assert!(
                validate_broker_props(&map(&[(key, "-2")])).is_err(),
                "{key}"
            );
        }
        let ms_max = i64::MAX.to_string();
        assert_eq!(
            validate_broker_props(&map(&[("log.retention.ms", &ms_max)])),
            Ok(())
        );
    }
}
