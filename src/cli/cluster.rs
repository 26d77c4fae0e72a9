//! `corelog cluster ...`: operations on a whole cluster (kafka-leader-election.sh's
//! `elect-leaders`). Each action lives in its own module; this one holds the clap shape.

use std::process::ExitCode;

use super::client::{BROKERS_DEFAULT, BROKERS_ENV};

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = BROKERS_ENV, default_value = BROKERS_DEFAULT, global = true)]
    pub bootstrap: String,
    #[command(subcommand)]
    pub action: ClusterAction,
}

#[derive(clap::Subcommand)]
pub enum ClusterAction {
    /// Preferred or unclean leader election, like kafka-leader-election.sh.
    #[command(
        name = "elect-leaders",
        after_help = "Examples:\n  corelog cluster elect-leaders --election-type preferred --all-topic-partitions\n  corelog cluster elect-leaders --election-type preferred --topic weblogs --partition 0\n  corelog cluster elect-leaders --election-type unclean --path-to-json-file partitions.json\n\nThe JSON file is Kafka's: {\"partitions\": [{\"topic\": \"weblogs\", \"partition\": 0}]}.\nExit codes: 0 every partition elected or already led by a valid replica, 1 some\ncould not be elected, 2 bad input or no broker reached."
    )]
    ElectLeaders(super::elect_leaders::ElectLeadersArgs),
}

pub fn run(args: ClusterArgs) -> ExitCode {
    match args.action {
        ClusterAction::ElectLeaders(a) => super::elect_leaders::run(&args.bootstrap, a),
    }
}
