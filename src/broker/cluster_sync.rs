//! Cluster mode on the metadata shard: topic changes go through the quorum
//! (`cluster::AdminCall`), and this broker's topic table follows the quorum's image
//! (`reconcile_cluster`): it opens the replicas it hosts of new topics and partitions,
//! deletes those of deleted topics, and records every partition's replicas, ISR and
//! leader, which routing (`Snapshot::route`) and Metadata read. Dynamic broker configs
//! (the cluster default and this node's own) go through the quorum too
//! (`commit_broker_configs`), and the table takes the image's
//! (`take_quorum_broker_configs`), so every member resolves topic defaults alike.
//!
//! `__consumer_offsets` and `__transaction_state` are quorum topics too, created once
//! enough brokers are live (`create_offsets_topic_when_ready`); group and transaction
//! coordination follow their leaders (`groups::follow_leadership`,
//! `txn::loading::follow_leadership`). A topic of the table with no replication info (made
//! before the broker joined a quorum) is this broker's own and is left alone.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use futures::future::{join_all, FutureExt};

use super::admin::{
    check_new_topic, group_parts, topic_overrides, Alteration, ConfigResource, TopicResult,
    TopicSpec,
};
use super::metadata::{unhex, ReplicaSet, Snapshot, TopicMeta};
use super::router::PartitionRef;
use super::shard::{Shard, METADATA_SHARD};
use super::Broker;
use crate::cluster::{AdminCall, ClusterHandle, ClusterImage, TopicState};
use crate::groups::offsets::OFFSETS_TOPIC;
use crate::protocol::errors as ec;

/// A topic the broker creates through the quorum once enough brokers are live.
struct InternalTopic {
    name: &'static str,
    partitions: i32,
    replication_factor: i16,
    configs: std::collections::BTreeMap<String, String>,
}

/// Has the metadata shard reconcile after each change of the cluster image. Weak, so
/// the controller thread's hook does not keep a stopped broker alive.
pub fn follow_image(broker: &Arc<Broker>, cluster: &ClusterHandle) {
    let weak = Arc::downgrade(broker);
    cluster.set_on_change(Box::new(move || {
        if let Some(broker) = weak.upgrade() {
            if let Some(cluster) = &broker.cluster {
                let image = cluster.image();
                broker.acls.follow(&image.acls);
                super::users_sync::follow(&broker, &image);
                broker.quotas.store.follow(&image.client_quotas);
            }
            broker.send(
                METADATA_SHARD,
                super::router::ShardMsg::Run(Box::new(|shard: Rc<Shard>| {
                    async move { shard.reconcile_cluster().await }.boxed_local()
                })),
            );
        }
    }));
}

impl Shard {
    fn cluster_handle(&self) -> &ClusterHandle {
        self.broker
            .cluster
            .as_deref()
            .expect("cluster mode has a cluster handle")
    }

    /// CreateTopics in cluster mode (metadata shard, admin lock held): local checks,
    /// then each topic through the quorum, then this broker's own replicas opened.
    pub(super) async fn create_topics_in_cluster(
        &self,
        topics: Vec<TopicSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult> {
        let snap = self.broker.metadata.snapshot();
        let mut results = Vec::with_capacity(topics.len());
        for spec in topics {
            let configs =
                match check_new_topic(&snap, &spec).and_then(|()| topic_overrides(&spec.configs)) {
                    Ok(configs) => configs,
                    Err(e) => {
                        results.push((spec.name, Err(e)));
                        continue;
                    }
                };
            let call = AdminCall::CreateTopic {
                name: spec.name.clone(),
                partitions: spec.partitions,
                replication_factor: spec.replication_factor,
                default_rf: self.broker.config.default_replication_factor,
                assignment: spec.assignment.clone(),
                configs,
                validate_only,
            };
            let r = self.cluster_handle().call(call).await;
            if r.is_ok() && !validate_only {
                tracing::info!(topic = %spec.name, "created topic through the quorum");
            }
            results.push((spec.name, r));
        }
        self.reconcile_locked().await;
        results
    }

    pub(super) async fn delete_topics_in_cluster(&self, names: Vec<String>) -> Vec<TopicResult> {
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            if crate::txn::is_internal_topic(&name) {
                let why = format!("{name} is internal: the broker keeps its own state there");
                results.push((name, Err((ec::INVALID_TOPIC_EXCEPTION, why))));
                continue;
            }
            let call = AdminCall::DeleteTopic { name: name.clone() };
            results.push((name, self.cluster_handle().call(call).await));
        }
        self.reconcile_locked().await;
        results
    }

    pub(super) async fn create_partitions_in_cluster(
        &self,
        requests: Vec<(String, i32)>,
        validate_only: bool,
    ) -> Vec<TopicResult> {
        let mut results = Vec::with_capacity(requests.len());
        for (name, total) in requests {
            let call = AdminCall::CreatePartitions {
                name: name.clone(),
                total,
                assignment: None,
                validate_only,
            };
            results.push((name, self.cluster_handle().call(call).await));
        }
        self.reconcile_locked().await;
        results
    }

    /// AlterConfigs in cluster mode: each changed quorum topic's ops go to the quorum
    /// with the broker-level values its list ops start from (`alterations`, each with
    /// those), which applies them to its current overrides
    /// (`cluster::topic_configs::alter`); `snap` then takes the quorum's overrides of
    /// each, so it shows this change merged with any other member's, and a refused
    /// change leaves the table as it was.
    pub(super) async fn commit_topic_configs<'a>(
        &self,
        alterations: impl Iterator<Item = (&'a Alteration, &'a BTreeMap<String, String>)>,
        results: &mut [Result<(), (i16, String)>],
        snap: &mut Snapshot,
        before: &Snapshot,
    ) {
        for ((a, fallbacks), result) in alterations.zip(results.iter_mut()) {
            let ConfigResource::Topic(name) = &a.resource else {
                continue;
            };
            let Some(old) = before.topic(name).filter(|t| !t.replication.is_empty()) else {
                continue;
            };
            if result.is_err() {
                continue;
            }
            let call = AdminCall::AlterTopicConfigs {
                name: name.clone(),
                replace: a.replace,
                ops: a.ops.clone(),
                fallbacks: fallbacks.clone(),
            };
            *result = self.cluster_handle().call(call).await;
            let configs = match (self.quorum_topic_configs(old), &result) {
                (Some(quorum), _) => quorum,
                (None, Ok(())) => continue,
                (None, Err(_)) => old.configs.clone(),
            };
            if let Some(meta) = snap.topic(name) {
                let mut meta = (**meta).clone();
                meta.configs = configs;
                *snap = snap.with_topic(meta);
            }
        }
    }

    /// In cluster mode, once the image has caught up: the quorum's overrides of the
    /// quorum topic `meta` (the same topic: same id), which may be newer than the
    /// table's; `None` otherwise.
    pub(super) fn quorum_topic_configs(
        &self,
        meta: &TopicMeta,
    ) -> Option<BTreeMap<String, String>> {
        let cluster = self.broker.cluster.as_ref()?;
        if meta.replication.is_empty() {
            return None;
        }
        let image = cluster.image();
        let q = image.topics.get(&meta.name)?;
        (image.caught_up && unhex(&q.id) == Some(meta.id)).then(|| q.configs.clone())
    }

    /// AlterConfigs in cluster mode: a BROKER resource's ops go to the quorum, which
    /// applies them to its current map (the cluster default for every member, this
    /// node's own for it alone; `cluster::broker_configs::alter`); `snap` then takes the
    /// quorum's maps, so a refused change leaves the table as it was.
    pub(super) async fn commit_broker_configs(
        &self,
        alterations: &[Alteration],
        results: &mut [Result<(), (i16, String)>],
        snap: &mut Snapshot,
    ) {
        for (a, result) in alterations.iter().zip(results.iter_mut()) {
            let ConfigResource::Broker { default } = a.resource else {
                continue;
            };
            if result.is_err() {
                continue;
            }
            let call = AdminCall::AlterBrokerConfigs {
                node_id: (!default).then_some(self.broker.config.node_id),
                replace: a.replace,
                ops: a.ops.clone(),
            };
            *result = self.cluster_handle().call(call).await;
        }
        self.take_quorum_broker_configs(snap);
    }

    /// In cluster mode, once the image has caught up: the quorum's dynamic broker
    /// configs (the cluster default and this node's) into `snap`; whether they changed.
    pub(super) fn take_quorum_broker_configs(&self, snap: &mut Snapshot) -> bool {
        let Some(cluster) = &self.broker.cluster else {
            return false;
        };
        let image = cluster.image();
        if !image.caught_up {
            return false;
        }
        let same = snap.default_broker_configs == *image.default_broker_configs
            && snap.broker_configs == *image.broker_configs;
        if !same {
            snap.default_broker_configs = (*image.default_broker_configs).clone();
            snap.broker_configs = (*image.broker_configs).clone();
        }
        !same
    }

    /// After the image changed (the controller thread's hook).
    pub async fn reconcile_cluster(&self) {
        let _guard = self.admin_lock.lock().await;
        self.reconcile_locked().await;
    }

    /// Brings the topic table in line with the image (admin lock held). Nothing is
    /// deleted before the image has caught up with the quorum (`caught_up`).
    async fn reconcile_locked(&self) {
        let image = self.cluster_handle().image();
        if !image.caught_up {
            return;
        }
        let me = self.broker.config.node_id;
        let current = self.broker.metadata.snapshot();
        let mut snap = (*current).clone();
        // Deleted (or deleted and created again) quorum topics go first: unpublished,
        // then their replicas removed.
        let gone: Vec<Arc<TopicMeta>> = snap
            .topics
            .values()
            .filter(|t| !t.replication.is_empty())
            .filter(|t| {
                image
                    .topics
                    .get(&t.name)
                    .is_none_or(|q| unhex(&q.id) != Some(t.id))
            })
            .cloned()
            .collect();
        for t in &gone {
            snap = snap.without_topic(&t.name);
        }
        if !gone.is_empty() {
            if let Err(e) = self.broker.metadata.publish(snap.clone()).await {
                tracing::error!("cannot persist topic metadata: {e}");
                return;
            }
            for t in &gone {
                let deletes = group_parts(t, 0, me)
                    .into_iter()
                    .map(|(shard, parts)| self.on_shard(shard, parts, None));
                let r: Result<(), String> = join_all(deletes).await.into_iter().collect();
                match r {
                    Ok(()) => tracing::info!(topic = %t.name, "deleted topic (quorum)"),
                    Err(e) => tracing::error!(topic = %t.name, "deleting replicas failed: {e}"),
                }
                crate::groups::service::topic_deleted(&self.broker, &t.name);
            }
        }
        let mut changed = !gone.is_empty();
        let before = snap.clone();
        let mut reconfigured: Vec<String> = Vec::new();
        for (name, q) in image.topics.iter() {
            let configs_before = snap.topic(name).map(|t| t.configs.clone());
            match self.follow_topic(&snap, name, q).await {
                Ok(Some(next)) => {
                    if configs_before.is_some_and(|c| c != q.configs) {
                        reconfigured.push(name.clone());
                    }
                    snap = next;
                    changed = true;
                }
                Ok(None) => {}
                Err(e) => tracing::error!(topic = %name, "cannot open replicas: {e}"),
            }
        }
        let broker_configs_changed = self.take_quorum_broker_configs(&mut snap);
        if changed || broker_configs_changed {
            if let Err(e) = self.broker.metadata.publish(snap).await {
                tracing::error!("cannot persist topic metadata: {e}");
            }
        }
        if changed {
            // Leaders, epochs and ISRs may have moved: every shard takes up its roles.
            crate::replication::apply_roles_everywhere(&self.broker);
            // After the roles (same shard queues, so the replica is no longer followed
            // or led): the copies a completed reassignment moved off this broker go.
            self.delete_moved_off(&before).await;
        }
        self.create_offsets_topic_when_ready(&image).await;
        // New broker defaults change every topic's effective configs.
        let reconfigure: Option<Option<Vec<String>>> = if broker_configs_changed {
            tracing::info!("dynamic broker configs changed through the quorum");
            Some(None)
        } else if !reconfigured.is_empty() {
            tracing::info!(topics = ?reconfigured, "topic configs changed through the quorum");
            Some(Some(reconfigured))
        } else {
            None
        };
        if let Some(topics) = reconfigure {
            for id in 0..self.broker.shard_count {
                let topics = topics.clone();
                self.broker.send(
                    id,
                    super::router::ShardMsg::Run(Box::new(move |s: Rc<Shard>| {
                        async move { s.reconfigure(topics.as_deref()) }.boxed_local()
                    })),
                );
            }
        }
    }

    /// Kafka creates `__consumer_offsets` when a group first needs it; here the live
    /// broker with the lowest id creates it through the quorum as soon as
    /// `offsets.topic.replication.factor` brokers are live, so the first FindCoordinator
    /// usually finds it (until then it answers COORDINATOR_NOT_AVAILABLE). A broker
    /// whose own, unreplicated offsets topic predates this keeps it. The same for
    /// `__transaction_state` with `transaction.state.log.*`.
    async fn create_offsets_topic_when_ready(&self, image: &ClusterImage) {
        let config = &self.broker.config;
        let internal = [
            InternalTopic {
                name: OFFSETS_TOPIC,
                partitions: config.offsets_topic_num_partitions,
                replication_factor: config.offsets_topic_replication_factor,
                configs: crate::groups::offsets::offsets_topic_configs(),
            },
            InternalTopic {
                name: crate::txn::TXN_STATE_TOPIC,
                partitions: config.txn.state_log_num_partitions,
                replication_factor: config.txn.state_log_replication_factor,
                configs: crate::txn::log::txn_state_topic_configs(),
            },
        ];
        for topic in internal {
            self.create_internal_topic_when_ready(image, topic).await;
        }
    }

    async fn create_internal_topic_when_ready(&self, image: &ClusterImage, topic: InternalTopic) {
        let rf = topic.replication_factor;
        let me = self.broker.config.node_id;
        let lowest = image.live_brokers.iter().map(|b| b.node_id).min();
        let name = topic.name;
        if image.topics.contains_key(name)
            || self.broker.metadata.snapshot().topic(name).is_some()
            || image.live_brokers.len() < rf as usize
            || lowest != Some(me)
        {
            return;
        }
        let call = AdminCall::CreateTopic {
            name: name.to_string(),
            partitions: topic.partitions,
            replication_factor: rf,
            default_rf: rf,
            assignment: None,
            configs: topic.configs,
            validate_only: false,
        };
        match self.cluster_handle().call(call).await {
            Ok(()) => tracing::info!(
                partitions = topic.partitions,
                replication_factor = rf,
                "created {name} through the quorum"
            ),
            Err((ec::TOPIC_ALREADY_EXISTS, _)) => {}
            Err((code, why)) => tracing::warn!(code, "cannot create {name}: {why}"),
        }
    }

    /// The table with quorum topic `q` as the image has it, its new hosted replicas
    /// opened; `None` when nothing changed.
    async fn follow_topic(
        &self,
        snap: &Snapshot,
        name: &str,
        q: &TopicState,
    ) -> Result<Option<Snapshot>, String> {
        let Some(id) = unhex(&q.id) else {
            return Err(format!("bad topic id {:?}", q.id));
        };
        let replication: Vec<ReplicaSet> = q
            .partitions
            .iter()
            .map(|p| ReplicaSet {
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
            })
            .collect();
        let (mut meta, from) = match snap.topic(name) {
            Some(local) if local.replication.is_empty() => {
                tracing::warn!(
                    topic = %name,
                    "a topic of this broker alone has the name of a quorum topic; keeping it"
                );
                return Ok(None);
            }
            Some(local) => {
                let same = local.replication == replication
                    && local.configs == q.configs
                    && local.partitions.len() == q.partitions.len();
                if same {
                    return Ok(None);
                }
                ((**local).clone(), local.partitions.len())
            }
            None => (
                TopicMeta {
                    name: name.to_string(),
                    id,
                    partitions: Vec::new(),
                    configs: BTreeMap::new(),
                    replication: Vec::new(),
                },
                0,
            ),
        };
        let grow = q.partitions.len().saturating_sub(from);
        if grow > 0 {
            let placed = snap
                .place(
                    grow,
                    self.broker.shard_count,
                    &self.broker.dirs.online_mask(),
                )
                .ok_or("no log dir is online")?;
            meta.partitions.extend(placed);
        }
        meta.configs = q.configs.clone();
        meta.replication = replication;
        let next = snap.with_topic(meta.clone());
        if grow > 0 {
            self.open_on_owners(&meta, from, &Arc::new(next.clone()))
                .await?;
        }
        // Replicas a reassignment put on this broker: opened empty, then fetched.
        let me = self.broker.config.node_id;
        let moved_here: Vec<usize> = match snap.topic(name) {
            Some(old) => (0..from.min(meta.partitions.len()))
                .filter(|&i| meta.hosted(i, me) && !old.hosted(i, me))
                .collect(),
            None => Vec::new(),
        };
        if !moved_here.is_empty() {
            tracing::info!(topic = %name, partitions = ?moved_here, "opening replicas reassigned to this broker");
            let next = Arc::new(next.clone());
            let opens = by_shard(&meta, &moved_here)
                .into_iter()
                .map(|(shard, parts)| self.on_shard(shard, parts, Some(next.clone())));
            let r: Result<(), String> = join_all(opens).await.into_iter().collect();
            r?;
        }
        Ok(Some(next))
    }

    /// Deletes the replicas this broker hosted in `before` and no longer hosts (a
    /// reassignment moved them off), on their owner shards.
    async fn delete_moved_off(&self, before: &Snapshot) {
        let me = self.broker.config.node_id;
        let now = self.broker.metadata.snapshot();
        for old in before.topics.values().filter(|t| !t.replication.is_empty()) {
            let Some(new) = now.topic(&old.name).filter(|t| t.id == old.id) else {
                continue;
            };
            let moved_off: Vec<usize> = (0..old.partitions.len().min(new.partitions.len()))
                .filter(|&i| old.hosted(i, me) && !new.hosted(i, me))
                .collect();
            if moved_off.is_empty() {
                continue;
            }
            let deletes = by_shard(new, &moved_off)
                .into_iter()
                .map(|(shard, parts)| self.on_shard(shard, parts, None));
            let r: Result<(), String> = join_all(deletes).await.into_iter().collect();
            match r {
                Ok(()) => {
                    tracing::info!(topic = %old.name, partitions = ?moved_off, "deleted replicas reassigned away from this broker")
                }
                Err(e) => {
                    tracing::error!(topic = %old.name, "deleting reassigned-away replicas failed: {e}")
                }
            }
        }
    }
}

/// The partitions `indexes` of `meta` grouped by owner shard.
fn by_shard(meta: &TopicMeta, indexes: &[usize]) -> BTreeMap<usize, Vec<PartitionRef>> {
    let mut out: BTreeMap<usize, Vec<PartitionRef>> = BTreeMap::new();
    for &i in indexes {
        let Some(p) = meta.partitions.get(i) else {
            continue;
        };
        out.entry(p.shard).or_default().push(PartitionRef {
            topic: meta.name.clone(),
            partition: i as i32,
            dir: p.dir,
        });
    }
    out
}
