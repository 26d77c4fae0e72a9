//! `corelog cluster elect-leaders`: kafka-leader-election.sh over the wire (ElectLeaders),
//! with its options and its output lines, so scripts written for it read ours.

use std::path::PathBuf;
use std::process::ExitCode;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::client::Client;
use crate::protocol::errors as ec;

/// How long the broker may take to apply the elections (the request's timeout_ms).
const ELECTION_TIMEOUT_MS: i32 = 30_000;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ElectionKind {
    Preferred,
    Unclean,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["topic", "all_topic_partitions", "path_to_json_file"])))]
pub struct ElectLeadersArgs {
    /// preferred: the first replica leads again if it is in the ISR; unclean: an
    /// offline partition gets a live out-of-sync replica as leader (records may be lost).
    #[arg(long, value_enum)]
    pub election_type: ElectionKind,
    /// One partition's topic (with --partition).
    #[arg(long, requires = "partition")]
    pub topic: Option<String>,
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// Every partition of the cluster.
    #[arg(long)]
    pub all_topic_partitions: bool,
    /// Kafka's JSON: {"partitions": [{"topic": "t", "partition": 0}, ...]}.
    #[arg(long)]
    pub path_to_json_file: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct JsonFile {
    partitions: Vec<JsonPartition>,
}

#[derive(serde::Deserialize)]
struct JsonPartition {
    topic: String,
    partition: i32,
}

pub fn run(bootstrap: &str, args: ElectLeadersArgs) -> ExitCode {
    let partitions = match chosen(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("corelog cluster elect-leaders: {e}");
            return ExitCode::from(2);
        }
    };
    let kind = match args.election_type {
        ElectionKind::Preferred => "PREFERRED",
        ElectionKind::Unclean => "UNCLEAN",
    };
    let response = Client::connect(bootstrap)
        .map_err(|e| e.to_string())
        .and_then(|mut c| call(&mut c, args.election_type, partitions));
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corelog cluster elect-leaders: {e}");
            return ExitCode::from(2);
        }
    };
    if response.error_code != ec::NONE {
        eprintln!(
            "corelog cluster elect-leaders: the broker refused the election: {}",
            error_name(response.error_code)
        );
        return ExitCode::FAILURE;
    }
    let report = Report::of(&response);
    print!("{}", report.render(kind));
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The partitions asked for; `None` is every partition.
fn chosen(args: &ElectLeadersArgs) -> Result<Option<Vec<(String, i32)>>, String> {
    if let (Some(topic), Some(partition)) = (&args.topic, args.partition) {
        return Ok(Some(vec![(topic.clone(), partition)]));
    }
    if let Some(path) = &args.path_to_json_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: JsonFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: {e} (expected {{\"partitions\": [{{\"topic\": \"t\", \"partition\": 0}}]}})",
                path.display()
            )
        })?;
        let mut out: Vec<(String, i32)> = Vec::new();
        for p in file.partitions {
            let tp = (p.topic, p.partition);
            if out.contains(&tp) {
                return Err(format!(
                    "{}: partition {}-{} is listed twice",
                    path.display(),
                    tp.0,
                    tp.1
                ));
            }
            out.push(tp);
        }
        return Ok(Some(out));
    }
    Ok(None)
}

fn call(
    client: &mut Client,
    kind: ElectionKind,
    partitions: Option<Vec<(String, i32)>>,
) -> Result<ElectLeadersResponse, String> {
    let version = client
        .version(ApiKey::ElectLeaders, (1, 2))
        .map_err(|e| e.to_string())?;
    let mut topics: Vec<TopicPartitions> = Vec::new();
    for (topic, partition) in partitions.iter().flatten() {
        match topics.iter_mut().find(|t| t.topic.as_str() == topic) {
            Some(t) => t.partitions.push(*partition),
            None => topics.push(
                TopicPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    let request = ElectLeadersRequest::default()
        .with_election_type(match kind {
            ElectionKind::Preferred => 0,
            ElectionKind::Unclean => 1,
        })
        .with_topic_partitions(partitions.map(|_| topics))
        .with_timeout_ms(ELECTION_TIMEOUT_MS);
    client
        .call(ApiKey::ElectLeaders, version, &request)
        .map_err(|e| e.to_string())
}

fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => format!("error code {code}"),
    }
}

/// The partitions sorted by outcome, as kafka-leader-election.sh reports them.
struct Report {
    succeeded: Vec<String>,
    noop: Vec<String>,
    failed: Vec<(String, String)>,
}

impl Report {
    fn of(response: &ElectLeadersResponse) -> Report {
        let mut report = Report {
            succeeded: Vec::new(),
            noop: Vec::new(),
            failed: Vec::new(),
        };
        for t in &response.replica_election_results {
            for p in &t.partition_result {
                let name = format!("{}-{}", t.topic.as_str(), p.partition_id);
                match p.error_code {
                    ec::NONE => report.succeeded.push(name),
                    ec::ELECTION_NOT_NEEDED => report.noop.push(name),
                    code => {
                        let mut why = error_name(code);
                        if let Some(m) = p.error_message.as_ref().filter(|m| !m.is_empty()) {
                            why = format!("{why}: {m}");
                        }
                        report.failed.push((name, why));
                    }
                }
            }
        }
        report
    }

    fn render(&self, kind: &str) -> String {
        let mut out = String::new();
        if !self.succeeded.is_empty() {
            out += &format!(
                "Successfully completed leader election ({kind}) for partitions {}\n",
                self.succeeded.join(", ")
            );
        }
        if !self.noop.is_empty() {
            out += &format!(
                "Valid replica already elected for partitions {}\n",
                self.noop.join(", ")
            );
        }
        for (partition, why) in &self.failed {
            out += &format!(
                "Error completing leader election ({kind}) for partition: {partition}: {why}\n"
            );
        }
        if !self.failed.is_empty() {
            out += &format!("{} replica(s) could not be elected\n", self.failed.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::elect_leaders_response::{
        PartitionResult, ReplicaElectionResult,
    };

    #[test]
    fn kafka_tool_lines() {
        let partition = |id: i32, code: i16| {
            PartitionResult::default()
                .with_partition_id(id)
                .with_error_code(code)
        };
        let response = ElectLeadersResponse::default().with_replica_election_results(vec![
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partition_result(vec![
                    partition(0, ec::NONE),
                    partition(1, ec::ELECTION_NOT_NEEDED),
                    partition(2, ec::NONE),
                    partition(3, ec::PREFERRED_LEADER_NOT_AVAILABLE),
                ]),
        ]);
        assert_eq!(
            Report::of(&response).render("PREFERRED"),
            "Successfully completed leader election (PREFERRED) for partitions t-0, t-2\n\
             Valid replica already elected for partitions t-1\n\
             Error completing leader election (PREFERRED) for partition: t-3: PreferredLeaderNotAvailable (80)\n\
             1 replica(s) could not be elected\n"
        );
    }
}
