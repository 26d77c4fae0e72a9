//! `corelog acl`'s command line, shaped like Kafka's `kafka-acls.sh`.

/// One of --add, --remove, --list, and what it applies to.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["add", "remove", "list"])))]
pub struct AclArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long = "bootstrap-server", visible_alias = "bootstrap", env = crate::cli::client::BROKERS_ENV, default_value = crate::cli::client::BROKERS_DEFAULT)]
    pub bootstrap: String,
    /// Add ACLs: every principal x host x operation on every resource named.
    #[arg(long)]
    pub add: bool,
    /// Remove ACLs: those matching the principals/hosts/operations given, or every ACL
    /// of the resources named when no principal is given.
    #[arg(long)]
    pub remove: bool,
    /// List ACLs: of the resources named, or all.
    #[arg(long)]
    pub list: bool,
    /// Accepted for kafka-acls compatibility: --remove never prompts here.
    #[arg(long)]
    pub force: bool,
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    pub allow_principals: Vec<String>,
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    pub deny_principals: Vec<String>,
    /// Hosts (IP addresses) the allow principals may come from (default: *).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Hosts the deny principals are denied from (default: *).
    #[arg(long = "deny-host", value_name = "HOST")]
    pub deny_hosts: Vec<String>,
    /// With --list: only the ACLs of this principal.
    #[arg(long = "principal", value_name = "PRINCIPAL")]
    pub principals: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens, All (default: All).
    #[arg(long = "operation", value_name = "OPERATION")]
    pub operations: Vec<String>,
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_ids: Vec<String>,
    /// A DELEGATION_TOKEN resource (a token id).
    #[arg(long = "delegation-token", value_name = "TOKEN_ID")]
    pub delegation_tokens: Vec<String>,
    /// A USER resource (User:name): who may create or describe tokens for that user.
    #[arg(long = "user-principal", value_name = "PRINCIPAL")]
    pub user_principals: Vec<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// LITERAL or PREFIXED (adding); also ANY or MATCH (listing, removing).
    #[arg(long = "resource-pattern-type", default_value = "LITERAL")]
    pub pattern_type: String,
    /// Convenience: WRITE, DESCRIBE, CREATE on the topics (WRITE, DESCRIBE on the
    /// transactional ids).
    #[arg(long)]
    pub producer: bool,
    /// With --producer: IDEMPOTENT_WRITE on the cluster.
    #[arg(long)]
    pub idempotent: bool,
    /// Convenience: READ, DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    pub consumer: bool,
}
