//! Topic administration on the metadata shard: CreateTopics and DeleteTopics from any
//! shard are forwarded to shard 0 (`METADATA_SHARD`), which places new partitions, has
//! their owner shards open or delete them, and publishes the new metadata snapshot.
//! `Shard::admin_lock` serialises these changes.

use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::join_all;

use super::metadata::{validate_topic_name, Placement, Snapshot, TopicMeta};
use super::router::{PartitionRef, ShardMsg};
use super::shard::{Shard, METADATA_SHARD};
use crate::protocol::errors as ec;

pub type TopicResult = (String, Result<(), (i16, String)>);

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
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
        let _guard = self.admin_lock.lock().await;
        let mut snap = (*self.broker.metadata.snapshot()).clone();
        let mut results = Vec::with_capacity(topics.len());
        let mut created = Vec::new();
        for spec in topics {
            let checked = check_new_topic(&snap, &spec);
            if checked.is_err() || validate_only {
                results.push((spec.name, checked));
                continue;
            }
            let placements = snap.place(
                spec.partitions as usize,
                self.broker.shard_count,
                self.broker.log_dirs.len(),
            );
            let meta = TopicMeta {
                name: spec.name.clone(),
                id: crate::util::random_uuid(),
                partitions: placements,
            };
            match self.open_on_owners(&meta).await {
                Ok(()) => {
                    snap = snap.with_topic(meta);
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

    async fn open_on_owners(&self, meta: &TopicMeta) -> Result<(), String> {
        let by_shard = group_parts(meta);
        let opens = by_shard
            .into_iter()
            .map(|(shard, parts)| self.on_shard(shard, parts, true));
        join_all(opens).await.into_iter().collect()
    }

    async fn on_shard(
        &self,
        shard: usize,
        parts: Vec<PartitionRef>,
        open: bool,
    ) -> Result<(), String> {
        if shard == self.id {
            return if open {
                self.open_partitions(parts).await
            } else {
                self.delete_partitions(parts).await
            };
        }
        let (reply, rx) = oneshot::channel();
        let msg = if open {
            ShardMsg::OpenPartitions { parts, reply }
        } else {
            ShardMsg::DeletePartitions { parts, reply }
        };
        self.broker.send(shard, msg);
        rx.await
            .unwrap_or_else(|_| Err("shard is shutting down".into()))
    }

    pub(super) async fn delete_topics_here(&self, names: Vec<String>) -> Vec<TopicResult> {
        let _guard = self.admin_lock.lock().await;
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            if name == crate::groups::offsets::OFFSETS_TOPIC {
                let why = format!("{name} is internal: committed offsets live there");
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
            let deletes = group_parts(&meta)
                .into_iter()
                .map(|(shard, parts)| self.on_shard(shard, parts, false));
            let r: Result<(), String> = join_all(deletes).await.into_iter().collect();
            if let Err(e) = &r {
                tracing::error!(topic = %name, "deleting partitions failed: {e}");
            }
            tracing::info!(topic = %name, "deleted topic");
            results.push((name, r.map_err(|e| (ec::KAFKA_STORAGE_ERROR, e))));
        }
        results
    }
}

fn check_new_topic(snap: &Snapshot, spec: &TopicSpec) -> Result<(), (i16, String)> {
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

fn group_parts(meta: &TopicMeta) -> HashMap<usize, Vec<PartitionRef>> {
    let mut by_shard: HashMap<usize, Vec<PartitionRef>> = HashMap::new();
    for (i, p) in meta.partitions.iter().enumerate() {
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
        .map(|n| {
            (
                n,
                Err((ec::UNKNOWN_SERVER_ERROR, "broker is shutting down".into())),
            )
        })
        .collect()
}
