//! Topic administration on the metadata shard: CreateTopics, DeleteTopics,
//! CreatePartitions and config changes from any shard are forwarded to shard 0
//! (`METADATA_SHARD`), which places new partitions, has their owner shards open or
//! delete them, and publishes the new metadata snapshot. `Shard::admin_lock` serialises
//! these changes. A config change is applied live: after publishing, every shard owning
//! an affected partition replaces that log's settings (`Shard::reconfigure`).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::{join_all, FutureExt};

use super::metadata::{validate_topic_name, Placement, Snapshot, TopicMeta};
use super::request_limits;
use super::router::{PartitionRef, ShardMsg};
use super::shard::{Shard, METADATA_SHARD};
use crate::cluster::topic_configs;
use crate::protocol::errors as ec;

pub type TopicResult = (String, Result<(), (i16, String)>);

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Config overrides, validated by the metadata shard.
    pub configs: Vec<(String, Option<String>)>,
    /// -1: `default.replication.factor`. A single broker takes 1 only.
    pub replication_factor: i16,
    /// Explicit replica lists per partition (CreateTopics' assignments), if given.
    pub assignment: Option<Vec<Vec<i32>>>,
}

pub enum AdminMsg {
    CreateTopics {
        topics: Vec<TopicSpec>,
        validate_only: bool,
        reply: oneshot::Sender<Vec<TopicResult>>,
    },
    DeleteTopics {
        names: Vec<String>,
        reply: oneshot::Sender<Vec<TopicResult>>,
    },
}

impl Shard {
    /// Creates topics through the metadata shard.
    pub async fn create_topics(
        self: &Rc<Self>,
        topics: Vec<TopicSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult> {
        if self.id == METADATA_SHARD {
            return self.create_topics_here(topics, validate_only).await;
        }
        let (reply, rx) = oneshot::channel();
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        self.broker.send(
            METADATA_SHARD,
            ShardMsg::Admin(AdminMsg::CreateTopics {
                topics,
                validate_only,
                reply,
            }),
        );
        rx.await.unwrap_or_else(|_| shutting_down(names))
    }

    pub async fn delete_topics(self: &Rc<Self>, names: Vec<String>) -> Vec<TopicResult> {
        if self.id == METADATA_SHARD {
            return self.delete_topics_here(names).await;
        }
        let (reply, rx) = oneshot::channel();
        self.broker.send(
            METADATA_SHARD,
            ShardMsg::Admin(AdminMsg::DeleteTopics {
                names: names.clone(),
                reply,
            }),
        );
        rx.await.unwrap_or_else(|_| shutting_down(names))
    }

    pub(super) async fn create_topics_here(
        &self,
        topics: Vec<TopicSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult> {
        let bound = self.broker.config.partitions_per_request_max;
        // Every caller's counts are resolved (-1 and assignments already counted); this
        // also bounds what Metadata's auto-creation asks for.
        let requested = topics
            .iter()
            .map(|t| u64::try_from(t.partitions).unwrap_or(0));
        if let Err(e) = request_limits::check_total(requested, bound) {
            return topics
                .into_iter()
                .map(|t| (t.name, Err(e.clone())))
                .collect();
        }
        let _guard = self.admin_lock.lock().await;
        if self.broker.cluster.is_some() {
            return self.create_topics_in_cluster(topics, validate_only).await;
        }
        let mut snap = (*self.broker.metadata.snapshot()).clone();
        let mut results = Vec::with_capacity(topics.len());
        let mut created = Vec::new();
        for spec in topics {
            let checked = check_new_topic(&snap, &spec);
            let configs = match checked.and_then(|()| topic_overrides(&spec.configs)) {
                Ok(configs) => configs,
                Err(e) => {
                    results.push((spec.name, Err(e)));
                    continue;
                }
            };
            if validate_only {
                results.push((spec.name, Ok(())));
                continue;
            }
            let Some(placements) = snap.place(
                spec.partitions as usize,
                self.broker.shard_count,
                &self.broker.dirs.online_mask(),
            ) else {
                results.push((spec.name, Err(no_online_dir())));
                continue;
            };
            let meta = TopicMeta {
                name: spec.name.clone(),
                id: crate::util::random_uuid(),
                partitions: placements,
                configs,
                replication: Vec::new(),
            };
            let next = snap.with_topic(meta.clone());
            match self.open_on_owners(&meta, 0, &Arc::new(next.clone())).await {
                Ok(()) => {
                    snap = next;
                    created.push(spec.name.clone());
                    results.push((spec.name, Ok(())));
                }
                Err(e) => results.push((spec.name, Err((ec::KAFKA_STORAGE_ERROR, e)))),
            }
        }
        if !created.is_empty() {
            if let Err(e) = self.broker.metadata.publish(snap).await {
                let msg = format!("cannot persist topic metadata: {e}");
                tracing::error!("{msg}");
                for r in results.iter_mut().filter(|r| created.contains(&r.0)) {
                    r.1 = Err((ec::KAFKA_STORAGE_ERROR, msg.clone()));
                }
            } else {
                tracing::info!(topics = ?created, "created topics");
            }
        }
        results
    }

    /// Opens the partitions of `meta` from index `from` on, on their owner shards,
    /// with the configs of `snap` (the snapshot to be published).
    pub(super) async fn open_on_owners(
        &self,
        meta: &TopicMeta,
        from: usize,
        snap: &Arc<Snapshot>,
    ) -> Result<(), String> {
        let by_shard = group_parts(meta, from, self.broker.config.node_id);
        let opens = by_shard
            .into_iter()
            .map(|(shard, parts)| self.on_shard(shard, parts, Some(snap.clone())));
        join_all(opens).await.into_iter().collect()
    }

    /// Opens `parts` on `shard` with the configs of `open`, or deletes them when `None`.
    pub(super) async fn on_shard(
        &self,
        shard: usize,
        parts: Vec<PartitionRef>,
        open: Option<Arc<Snapshot>>,
    ) -> Result<(), String> {
        if shard == self.id {
            return match open {
                Some(snap) => self.open_partitions(parts, &snap).await,
                None => self.delete_partitions(parts).await,
            };
        }
        let (reply, rx) = oneshot::channel();
        let msg = match open {
            Some(snap) => ShardMsg::OpenPartitions { parts, snap, reply },
            None => ShardMsg::DeletePartitions { parts, reply },
        };
        self.broker.send(shard, msg);
        rx.await
            .unwrap_or_else(|_| Err("shard is shutting down".into()))
    }

    pub(super) async fn delete_topics_here(&self, names: Vec<String>) -> Vec<TopicResult> {
        let _guard = self.admin_lock.lock().await;
        if self.broker.cluster.is_some() {
            return self.delete_topics_in_cluster(names).await;
        }
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            if crate::txn::is_internal_topic(&name) {
                let why = format!("{name} is internal: the broker keeps its own state there");
                results.push((name, Err((ec::INVALID_TOPIC_EXCEPTION, why))));
                continue;
            }
            let snap = self.broker.metadata.snapshot();
            let Some(meta) = snap.topic(&name).cloned() else {
                results.push((
                    name,
                    Err((ec::UNKNOWN_TOPIC_OR_PARTITION, "no such topic".into())),
                ));
                continue;
            };
            // Unpublish first, so no new request is routed to partitions being removed.
            if let Err(e) = self
                .broker
                .metadata
                .publish(snap.without_topic(&name))
                .await
            {
                results.push((name, Err((ec::KAFKA_STORAGE_ERROR, e.to_string()))));
                continue;
            }
            let deletes = group_parts(&meta, 0, self.broker.config.node_id)
                .into_iter()
                .map(|(shard, parts)| self.on_shard(shard, parts, None));
            let r: Result<(), String> = join_all(deletes).await.into_iter().collect();
            if let Err(e) = &r {
                tracing::error!(topic = %name, "deleting partitions failed: {e}");
            }
            tracing::info!(topic = %name, "deleted topic");
            crate::groups::service::topic_deleted(&self.broker, &name);
            results.push((name, r.map_err(|e| (ec::KAFKA_STORAGE_ERROR, e))));
        }
        results
    }
}

/// A resource the config APIs name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    /// This node's BROKER resource, or (`default`) the cluster-wide default one.
    Broker {
        default: bool,
    },
}

/// One change to a resource's configs (IncrementalAlterConfigs' operations; AlterConfigs
/// is a `replace` of the whole set with `Set`s).
#[derive(Debug, Clone)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

/// The config changes of one resource.
#[derive(Debug, Clone)]
pub struct Alteration {
    pub resource: ConfigResource,
    /// AlterConfigs: the ops replace every existing override of the resource.
    pub replace: bool,
    pub ops: Vec<ConfigOp>,
}

pub type AdminResult = Result<(), (i16, String)>;

impl Shard {
    /// Changes topic or broker configs through the metadata shard; the new values are
    /// persisted, published, and in effect on every partition when this returns.
    pub async fn alter_configs(
        self: &Rc<Self>,
        alterations: Vec<Alteration>,
        validate_only: bool,
    ) -> Vec<AdminResult> {
        let n = alterations.len();
        self.run_on(METADATA_SHARD, move |s| {
            async move { s.alter_configs_here(alterations, validate_only).await }.boxed_local()
        })
        .await
        .unwrap_or_else(|| vec![Err(shutting_down_error()); n])
    }

    async fn alter_configs_here(
        self: &Rc<Self>,
        alterations: Vec<Alteration>,
        validate_only: bool,
    ) -> Vec<AdminResult> {
        let _guard = self.admin_lock.lock().await;
        let mut snap = (*self.broker.metadata.snapshot()).clone();
        // In a cluster the quorum's broker configs are the base (this shard may not have
        // followed the latest image yet); taking them changes every topic's defaults.
        let mut touched_broker = self.take_quorum_broker_configs(&mut snap);
        let before = snap.clone();
        let mut results = Vec::with_capacity(alterations.len());
        let mut touched_topics: Vec<String> = Vec::new();
        // By alteration: what a topic's list ops start from at broker level (the quorum
        // applies them again, without this broker's layers).
        let mut list_fallbacks: Vec<BTreeMap<String, String>> = Vec::new();
        for a in &alterations {
            let fallbacks = match &a.resource {
                ConfigResource::Topic(_) => {
                    topic_configs::list_fallbacks(&self.broker.config_layers(&snap), &a.ops)
                }
                ConfigResource::Broker { .. } => BTreeMap::new(),
            };
            let changed = match &a.resource {
                ConfigResource::Topic(name) => match snap.topic(name) {
                    None => Err((
                        ec::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("Topic {name} does not exist."),
                    )),
                    Some(meta) => {
                        // In a cluster, checked against the quorum's latest overrides
                        // (the table may not have followed them yet).
                        let base = if a.replace {
                            BTreeMap::new()
                        } else {
                            self.quorum_topic_configs(meta)
                                .unwrap_or_else(|| meta.configs.clone())
                        };
                        let applied = topic_configs::apply_ops(base, &a.ops, &fallbacks);
                        applied.map(|configs| {
                            let mut meta = (**meta).clone();
                            meta.configs = configs;
                            meta
                        })
                    }
                }
                .map(|meta| {
                    touched_topics.push(meta.name.clone());
                    snap = snap.with_topic(meta);
                }),
                ConfigResource::Broker { default } => {
                    let current = if *default {
                        &snap.default_broker_configs
                    } else {
                        &snap.broker_configs
                    };
                    let base = if a.replace {
                        BTreeMap::new()
                    } else {
                        current.clone()
                    };
                    crate::cluster::broker_configs::apply_ops(base, &a.ops, !*default).map(
                        |configs| {
                            touched_broker = true;
                            if *default {
                                snap.default_broker_configs = configs;
                            } else {
                                snap.broker_configs = configs;
                            }
                        },
                    )
                }
            };
            results.push(changed);
            list_fallbacks.push(fallbacks);
        }
        if validate_only || (touched_topics.is_empty() && !touched_broker) {
            return results;
        }
        if self.broker.cluster.is_some() {
            let topics = alterations.iter().zip(&list_fallbacks);
            self.commit_topic_configs(topics, &mut results, &mut snap, &before)
                .await;
            self.commit_broker_configs(&alterations, &mut results, &mut snap)
                .await;
        }
        if let Err(e) = self.broker.metadata.publish(snap).await {
            let msg = format!("cannot persist the config change: {e}");
            tracing::error!("{msg}");
            return results
                .into_iter()
                .map(|r| r.and(Err((ec::KAFKA_STORAGE_ERROR, msg.clone()))))
                .collect();
        }
        tracing::info!(topics = ?touched_topics, broker = touched_broker, "configs changed");
        let topics: Option<Vec<String>> = (!touched_broker).then_some(touched_topics);
        let applies = (0..self.broker.shard_count).map(|id| {
            let topics = topics.clone();
            self.run_on(id, move |s| {
                async move { s.reconfigure(topics.as_deref()) }.boxed_local()
            })
        });
        join_all(applies).await;
        results
    }

    /// Grows topics to the given partition counts (CreatePartitions).
    pub async fn create_partitions(
        self: &Rc<Self>,
        requests: Vec<(String, i32)>,
        validate_only: bool,
    ) -> Vec<TopicResult> {
        let names: Vec<String> = requests.iter().map(|r| r.0.clone()).collect();
        self.run_on(METADATA_SHARD, move |s| {
            async move { s.create_partitions_here(requests, validate_only).await }.boxed_local()
        })
        .await
        .unwrap_or_else(|| shutting_down(names))
    }

    async fn create_partitions_here(
        &self,
        requests: Vec<(String, i32)>,
        validate_only: bool,
    ) -> Vec<TopicResult> {
        let _guard = self.admin_lock.lock().await;
        let snap = self.broker.metadata.snapshot();
        let added = requests.iter().map(|(name, count)| {
            snap.topic(name).map_or(0, |t| {
                request_limits::growth_partitions(t.partitions.len(), *count)
            })
        });
        let bound = self.broker.config.partitions_per_request_max;
        if let Err(e) = request_limits::check_total(added, bound) {
            return requests
                .into_iter()
                .map(|r| (r.0, Err(e.clone())))
                .collect();
        }
        if self.broker.cluster.is_some() {
            return self
                .create_partitions_in_cluster(requests, validate_only)
                .await;
        }
        let mut results = Vec::with_capacity(requests.len());
        for (name, count) in requests {
            let snap = self.broker.metadata.snapshot();
            let checked = check_growth(&snap, &name, count);
            let meta = match checked {
                Ok(meta) if !validate_only => meta,
                other => {
                    results.push((name, other.map(|_| ())));
                    continue;
                }
            };
            let old = meta.partitions.len();
            let Some(placed) = snap.place(
                count as usize - old,
                self.broker.shard_count,
                &self.broker.dirs.online_mask(),
            ) else {
                results.push((name, Err(no_online_dir())));
                continue;
            };
            let mut grown = (*meta).clone();
            grown.partitions.extend(placed);
            let next = snap.with_topic(grown.clone());
            if let Err(e) = self
                .open_on_owners(&grown, old, &Arc::new(next.clone()))
                .await
            {
                results.push((name, Err((ec::KAFKA_STORAGE_ERROR, e))));
                continue;
            }
            match self.broker.metadata.publish(next).await {
                Ok(()) => {
                    tracing::info!(topic = %name, from = old, to = count, "added partitions");
                    results.push((name, Ok(())));
                }
                Err(e) => results.push((
                    name,
                    Err((ec::KAFKA_STORAGE_ERROR, format!("cannot persist: {e}"))),
                )),
            }
        }
        results
    }
}

/// Kafka's checks for CreatePartitions: the topic exists, is not internal, and grows.
fn check_growth(snap: &Snapshot, name: &str, count: i32) -> Result<Arc<TopicMeta>, (i16, String)> {
    let meta = snap.topic(name).ok_or_else(|| {
        (
            ec::UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{name}' does not exist."),
        )
    })?;
    if crate::txn::is_internal_topic(name) {
        return Err((
            ec::INVALID_REQUEST,
            format!("{name} is internal: its partition count places groups or transactions"),
        ));
    }
    let old = meta.partitions.len() as i32;
    if count < old {
        return Err((
            ec::INVALID_PARTITIONS,
            format!(
                "Topic currently has {old} partitions, which is higher than the requested {count}."
            ),
        ));
    }
    if count == old {
        return Err((
            ec::INVALID_PARTITIONS,
            format!("Topic already has {old} partitions."),
        ));
    }
    Ok(meta.clone())
}

fn no_online_dir() -> (i16, String) {
    (
        ec::KAFKA_STORAGE_ERROR,
        "every log dir is offline; no partition can be placed".into(),
    )
}

fn shutting_down_error() -> (i16, String) {
    (ec::UNKNOWN_SERVER_ERROR, "broker is shutting down".into())
}

pub(super) fn check_new_topic(snap: &Snapshot, spec: &TopicSpec) -> Result<(), (i16, String)> {
    validate_topic_name(&spec.name).map_err(|e| (ec::INVALID_TOPIC_EXCEPTION, e))?;
    if snap.topic(&spec.name).is_some() {
        return Err((
            ec::TOPIC_ALREADY_EXISTS,
            format!("Topic '{}' already exists.", spec.name),
        ));
    }
    if spec.partitions < 1 {
        return Err((
            ec::INVALID_PARTITIONS,
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    Ok(())
}

/// Validates a new topic's config overrides (null values are ignored, as Kafka does).
pub(super) fn topic_overrides(
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, (i16, String)> {
    let mut out = BTreeMap::new();
    for (k, v) in configs {
        let Some(v) = v else { continue };
        let v = crate::topic_config::validate_topic_override(k, v)
            .map_err(|e| (ec::INVALID_CONFIG, e))?;
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// The partitions of `meta` from index `from` on, by owner shard.
/// The partitions of `meta` from `from` on that broker `me` hosts, by owner shard.
pub(super) fn group_parts(
    meta: &TopicMeta,
    from: usize,
    me: i32,
) -> HashMap<usize, Vec<PartitionRef>> {
    let mut by_shard: HashMap<usize, Vec<PartitionRef>> = HashMap::new();
    for (i, p) in meta.partitions.iter().enumerate().skip(from) {
        if !meta.hosted(i, me) {
            continue;
        }
        let Placement { shard, dir } = *p;
        by_shard.entry(shard).or_default().push(PartitionRef {
            topic: meta.name.clone(),
            partition: i as i32,
            dir,
        });
    }
    by_shard
}

fn shutting_down(names: Vec<String>) -> Vec<TopicResult> {
    names
        .into_iter()
        .map(|n| (n, Err(shutting_down_error())))
        .collect()
}
