//! `corelog acl --add|--remove|--list`: ACLs of a running broker over the wire
//! (CreateAcls, DescribeAcls, DeleteAcls), with kafka-acls.sh's options and output
//! lines, so scripts written for one work with the other.

pub mod args;

use std::collections::BTreeMap;
use std::process::ExitCode;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

pub use args::AclArgs;

use super::client::Client;
use crate::security::acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME, CODE_ANY,
    CODE_MATCH, WILDCARD,
};

/// A resource as the command line names it: type, name, pattern type code (a filter's
/// ANY/MATCH too).
type Resource = (ResourceType, String, i8);

/// One filter in the wire's terms (DescribeAcls' body, a DeleteAcls entry).
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    resource_type: i8,
    name: Option<String>,
    pattern: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
}

pub fn run(args: AclArgs) -> ExitCode {
    let outcome = Client::connect(&args.bootstrap)
        .map_err(|e| e.to_string())
        .and_then(|mut c| act(&mut c, &args));
    match outcome {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog acl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn act(c: &mut Client, args: &AclArgs) -> Result<String, String> {
    let resources = resources(args)?;
    if args.add {
        let bindings = bindings_to_add(args, &resources)?;
        let mut out = added_lines(&bindings);
        create(c, &bindings)?;
        for (rt, name, pattern) in distinct_resources(&bindings) {
            out += &list(c, &[exact_filter(rt, &name, pattern)])?;
        }
        return Ok(out);
    }
    if args.remove {
        if resources.is_empty() {
            return Err(
                "--remove needs a resource: --topic, --group, --transactional-id or --cluster"
                    .into(),
            );
        }
        return remove(c, &remove_filters(args, &resources)?);
    }
    let filters = list_filters(args, &resources)?;
    let mut out = String::new();
    for f in &filters {
        out += &list(c, std::slice::from_ref(f))?;
    }
    Ok(out)
}

fn pattern_code(s: &str, adding: bool) -> Result<i8, String> {
    if let Some(p) = PatternType::parse(s) {
        return Ok(p.code());
    }
    match s.to_ascii_uppercase().as_str() {
        "ANY" if !adding => Ok(CODE_ANY),
        "MATCH" if !adding => Ok(CODE_MATCH),
        _ if adding => Err(format!(
            "--resource-pattern-type {s}: give LITERAL or PREFIXED"
        )),
        _ => Err(format!(
            "--resource-pattern-type {s}: give LITERAL, PREFIXED, ANY or MATCH"
        )),
    }
}

fn resources(args: &AclArgs) -> Result<Vec<Resource>, String> {
    let pattern = pattern_code(&args.pattern_type, args.add)?;
    let mut out: Vec<Resource> = Vec::new();
    let named = [
        (ResourceType::Topic, &args.topics),
        (ResourceType::Group, &args.groups),
        (ResourceType::TransactionalId, &args.transactional_ids),
        (ResourceType::DelegationToken, &args.delegation_tokens),
        (ResourceType::User, &args.user_principals),
    ];
    for (rt, names) in named {
        out.extend(names.iter().map(|n| (rt, n.clone(), pattern)));
    }
    if args.cluster {
        out.push((
            ResourceType::Cluster,
            CLUSTER_NAME.into(),
            PatternType::Literal.code(),
        ));
    }
    Ok(out)
}

fn operations(args: &AclArgs) -> Result<Vec<Operation>, String> {
    if args.operations.is_empty() {
        return Ok(vec![Operation::All]);
    }
    args.operations
        .iter()
        .map(|o| {
            Operation::parse(o).ok_or_else(|| format!("--operation {o}: not a Kafka ACL operation"))
        })
        .collect()
}

/// The operations a resource gets: --producer / --consumer's sets, else --operation's.
fn operations_for(args: &AclArgs, rt: ResourceType) -> Result<Vec<Operation>, String> {
    use Operation::*;
    if !(args.producer || args.consumer) {
        return operations(args);
    }
    let mut ops = Vec::new();
    if args.producer {
        ops.extend(match rt {
            ResourceType::Topic => vec![Write, Describe, Create],
            ResourceType::TransactionalId => vec![Write, Describe],
            ResourceType::Cluster if args.idempotent => vec![IdempotentWrite],
            _ => vec![],
        });
    }
    if args.consumer {
        ops.extend(match rt {
            ResourceType::Topic => vec![Read, Describe],
            ResourceType::Group => vec![Read],
            _ => vec![],
        });
    }
    Ok(ops)
}

fn bindings_to_add(args: &AclArgs, resources: &[Resource]) -> Result<Vec<AclBinding>, String> {
    if args.allow_principals.is_empty() && args.deny_principals.is_empty() {
        return Err("--add needs --allow-principal or --deny-principal".into());
    }
    if args.consumer && args.groups.is_empty() {
        return Err("--consumer needs --group".into());
    }
    let mut resources = resources.to_vec();
    if args.producer && args.idempotent && !args.cluster {
        resources.push((
            ResourceType::Cluster,
            CLUSTER_NAME.into(),
            PatternType::Literal.code(),
        ));
    }
    if resources.is_empty() {
        return Err(
            "--add needs a resource: --topic, --group, --transactional-id or --cluster".into(),
        );
    }
    let hosts = |given: &Vec<String>| {
        if given.is_empty() {
            vec![WILDCARD.to_string()]
        } else {
            given.clone()
        }
    };
    let sides = [
        (
            Permission::Allow,
            &args.allow_principals,
            hosts(&args.allow_hosts),
        ),
        (
            Permission::Deny,
            &args.deny_principals,
            hosts(&args.deny_hosts),
        ),
    ];
    let mut out = Vec::new();
    for (rt, name, pattern) in &resources {
        for op in operations_for(args, *rt)? {
            for (permission, principals, hosts) in &sides {
                for p in principals.iter() {
                    for h in hosts {
                        let b = AclBinding::from_wire(
                            rt.code(),
                            name,
                            *pattern,
                            p,
                            h,
                            op.code(),
                            permission.code(),
                        )?;
                        if !out.contains(&b) {
                            out.push(b);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn exact_filter(rt: ResourceType, name: &str, pattern: PatternType) -> Filter {
    Filter {
        resource_type: rt.code(),
        name: Some(name.to_string()),
        pattern: pattern.code(),
        principal: None,
        host: None,
        operation: CODE_ANY,
        permission: CODE_ANY,
    }
}

fn resource_filter(r: &Resource) -> Filter {
    Filter {
        resource_type: r.0.code(),
        name: Some(r.1.clone()),
        pattern: r.2,
        principal: None,
        host: None,
        operation: CODE_ANY,
        permission: CODE_ANY,
    }
}

fn list_filters(args: &AclArgs, resources: &[Resource]) -> Result<Vec<Filter>, String> {
    let base: Vec<Filter> = if resources.is_empty() {
        vec![Filter {
            resource_type: CODE_ANY,
            name: None,
            pattern: CODE_ANY,
            principal: None,
            host: None,
            operation: CODE_ANY,
            permission: CODE_ANY,
        }]
    } else {
        resources.iter().map(resource_filter).collect()
    };
    if args.principals.is_empty() {
        return Ok(base);
    }
    Ok(base
        .iter()
        .flat_map(|f| {
            args.principals.iter().map(move |p| Filter {
                principal: Some(p.clone()),
                ..f.clone()
            })
        })
        .collect())
}

fn remove_filters(args: &AclArgs, resources: &[Resource]) -> Result<Vec<Filter>, String> {
    if args.allow_principals.is_empty() && args.deny_principals.is_empty() {
        return Ok(resources.iter().map(resource_filter).collect());
    }
    let mut out = Vec::new();
    for r in resources {
        for op in operations_for(args, r.0)? {
            let sides = [
                (Permission::Allow, &args.allow_principals, &args.allow_hosts),
                (Permission::Deny, &args.deny_principals, &args.deny_hosts),
            ];
            for (permission, principals, hosts) in sides {
                for p in principals {
                    let hosts: Vec<Option<String>> = if hosts.is_empty() {
                        vec![Some(WILDCARD.into())]
                    } else {
                        hosts.iter().cloned().map(Some).collect()
                    };
                    for h in hosts {
                        out.push(Filter {
                            principal: Some(p.clone()),
                            host: h,
                            operation: op.code(),
                            permission: permission.code(),
                            ..resource_filter(r)
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn create(c: &mut Client, bindings: &[AclBinding]) -> Result<(), String> {
    let v = c
        .version(ApiKey::CreateAcls, (1, 3))
        .map_err(|e| e.to_string())?;
    let mut req = CreateAclsRequest::default();
    req.creations = bindings
        .iter()
        .map(|b| {
            let mut a = AclCreation::default();
            a.resource_type = b.resource_type.code();
            a.resource_name = s(&b.name);
            a.resource_pattern_type = b.pattern.code();
            a.principal = s(&b.principal);
            a.host = s(&b.host);
            a.operation = b.operation.code();
            a.permission_type = b.permission.code();
            a
        })
        .collect();
    let resp: CreateAclsResponse = c
        .call(ApiKey::CreateAcls, v, &req)
        .map_err(|e| e.to_string())?;
    for r in &resp.results {
        if r.error_code != 0 {
            return Err(refusal(r.error_code, r.error_message.as_deref()));
        }
    }
    Ok(())
}

fn refusal(code: i16, message: Option<&str>) -> String {
    let name = kafka_protocol::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
    format!("{name}: {}", message.unwrap_or(""))
}

/// The bindings a filter selects, grouped by resource pattern.
type Grouped = BTreeMap<(ResourceType, String, PatternType), Vec<AclBinding>>;

fn describe(c: &mut Client, f: &Filter) -> Result<Grouped, String> {
    let v = c
        .version(ApiKey::DescribeAcls, (1, 3))
        .map_err(|e| e.to_string())?;
    let mut req = DescribeAclsRequest::default();
    req.resource_type_filter = f.resource_type;
    req.resource_name_filter = f.name.as_deref().map(s);
    req.pattern_type_filter = f.pattern;
    req.principal_filter = f.principal.as_deref().map(s);
    req.host_filter = f.host.as_deref().map(s);
    req.operation = f.operation;
    req.permission_type = f.permission;
    let resp: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, v, &req)
        .map_err(|e| e.to_string())?;
    if resp.error_code != 0 {
        return Err(refusal(resp.error_code, resp.error_message.as_deref()));
    }
    let mut out = Grouped::new();
    for r in &resp.resources {
        for a in &r.acls {
            let b = AclBinding::from_wire(
                r.resource_type,
                &r.resource_name,
                r.pattern_type,
                &a.principal,
                &a.host,
                a.operation,
                a.permission_type,
            )?;
            let key = (b.resource_type, b.name.clone(), b.pattern);
            out.entry(key).or_default().push(b);
        }
    }
    Ok(out)
}

fn list(c: &mut Client, filters: &[Filter]) -> Result<String, String> {
    let mut out = String::new();
    for f in filters {
        for ((rt, name, pattern), acls) in describe(c, f)? {
            out += &format!(
                "Current ACLs for resource `{}`: \n{}\n",
                pattern_text(rt, &name, pattern),
                entries_text(&acls)
            );
        }
    }
    Ok(out)
}

fn remove(c: &mut Client, filters: &[Filter]) -> Result<String, String> {
    let v = c
        .version(ApiKey::DeleteAcls, (1, 3))
        .map_err(|e| e.to_string())?;
    let mut req = DeleteAclsRequest::default();
    req.filters = filters
        .iter()
        .map(|f| {
            let mut d = DeleteAclsFilter::default();
            d.resource_type_filter = f.resource_type;
            d.resource_name_filter = f.name.as_deref().map(s);
            d.pattern_type_filter = f.pattern;
            d.principal_filter = f.principal.as_deref().map(s);
            d.host_filter = f.host.as_deref().map(s);
            d.operation = f.operation;
            d.permission_type = f.permission;
            d
        })
        .collect();
    let resp: DeleteAclsResponse = c
        .call(ApiKey::DeleteAcls, v, &req)
        .map_err(|e| e.to_string())?;
    let mut removed: Vec<AclBinding> = Vec::new();
    for r in &resp.filter_results {
        if r.error_code != 0 {
            return Err(refusal(r.error_code, r.error_message.as_deref()));
        }
        for m in &r.matching_acls {
            removed.push(AclBinding::from_wire(
                m.resource_type,
                &m.resource_name,
                m.pattern_type,
                &m.principal,
                &m.host,
                m.operation,
                m.permission_type,
            )?);
        }
    }
    let mut out = String::new();
    for ((rt, name, pattern), acls) in group(removed) {
        out += &format!(
            "Removed ACLs from resource `{}`: \n{}\n",
            pattern_text(rt, &name, pattern),
            entries_text(&acls)
        );
    }
    if out.is_empty() {
        out = "No ACLs matched.\n".into();
    }
    Ok(out)
}

fn group(bindings: Vec<AclBinding>) -> Grouped {
    let mut out = Grouped::new();
    for b in bindings {
        let key = (b.resource_type, b.name.clone(), b.pattern);
        out.entry(key).or_default().push(b);
    }
    out
}

fn distinct_resources(bindings: &[AclBinding]) -> Vec<(ResourceType, String, PatternType)> {
    group(bindings.to_vec()).into_keys().collect()
}

fn added_lines(bindings: &[AclBinding]) -> String {
    group(bindings.to_vec())
        .into_iter()
        .map(|((rt, name, pattern), acls)| {
            format!(
                "Adding ACLs for resource `{}`: \n{}\n",
                pattern_text(rt, &name, pattern),
                entries_text(&acls)
            )
        })
        .collect()
}

/// kafka-acls' `ResourcePattern(...)` text.
fn pattern_text(rt: ResourceType, name: &str, pattern: PatternType) -> String {
    format!(
        "ResourcePattern(resourceType={}, name={name}, patternType={})",
        rt.name(),
        pattern.name()
    )
}

/// kafka-acls' entry lines: a space, a tab, the entry, a trailing space.
fn entries_text(acls: &[AclBinding]) -> String {
    acls.iter()
        .map(|b| {
            format!(
                " \t(principal={}, host={}, operation={}, permissionType={}) \n",
                b.principal,
                b.host,
                b.operation.name(),
                b.permission.name()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AclArgs,
    }

    fn parse(line: &str) -> AclArgs {
        Cli::try_parse_from(std::iter::once("acl").chain(line.split_whitespace()))
            .unwrap()
            .args
    }

    #[test]
    fn producer_and_consumer_conveniences() {
        let a =
            parse("--add --allow-principal User:alice --producer --topic t --transactional-id x");
        let got: Vec<(ResourceType, Operation)> = bindings_to_add(&a, &resources(&a).unwrap())
            .unwrap()
            .iter()
            .map(|b| (b.resource_type, b.operation))
            .collect();
        use Operation::*;
        use ResourceType::*;
        assert_eq!(
            got,
            [
                (Topic, Write),
                (Topic, Describe),
                (Topic, Create),
                (TransactionalId, Write),
                (TransactionalId, Describe)
            ]
        );
        let a = parse("--add --allow-principal User:bob --consumer --topic t --group g");
        let got: Vec<(ResourceType, Operation)> = bindings_to_add(&a, &resources(&a).unwrap())
            .unwrap()
            .iter()
            .map(|b| (b.resource_type, b.operation))
            .collect();
        assert_eq!(got, [(Topic, Read), (Topic, Describe), (Group, Read)]);
        let a = parse("--add --allow-principal User:bob --consumer --topic t");
        assert!(bindings_to_add(&a, &resources(&a).unwrap()).is_err());
    }

    #[test]
    fn add_crosses_principals_hosts_and_operations() {
        let a = parse(
            "--add --allow-principal User:a --deny-principal User:b --deny-host 10.0.0.1 \
             --operation read --operation describe-configs --topic t --resource-pattern-type prefixed",
        );
        let b = bindings_to_add(&a, &resources(&a).unwrap()).unwrap();
        assert_eq!(b.len(), 4);
        assert!(b.iter().all(|b| b.pattern == PatternType::Prefixed));
        let denied = b.iter().find(|b| b.permission == Permission::Deny).unwrap();
        assert_eq!(
            (denied.principal.as_str(), denied.host.as_str()),
            ("User:b", "10.0.0.1")
        );
        assert!(
            parse("--add --allow-principal User:a --topic t --resource-pattern-type any")
                .pattern_type
                .eq_ignore_ascii_case("any")
        );
        let any = parse("--add --allow-principal User:a --topic t --resource-pattern-type any");
        assert!(
            resources(&any).is_err(),
            "ANY is a filter, not a pattern to add"
        );
    }

    #[test]
    fn output_lines_are_kafka_acls() {
        let b = AclBinding::from_wire(2, "t", 3, "User:alice", "*", 4, 3).unwrap();
        assert_eq!(
            added_lines(&[b]),
            "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`: \n \t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW) \n\n"
        );
    }
}
