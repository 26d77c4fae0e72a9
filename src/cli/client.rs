//! A small blocking Kafka client for the command-line tools: one request at a time per
//! connection (`Client`), one connection per broker (`Cluster`), requests and responses
//! encoded with the kafka-protocol crate. It runs on the CLI's own thread, never on a
//! broker shard.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Default broker list: `$CORELOG_BROKERS`, else localhost:9092.
pub const BROKERS_ENV: &str = "CORELOG_BROKERS";
pub const BROKERS_DEFAULT: &str = "localhost:9092";
/// How long to wait for a connection and for each response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response the tools accept.
pub const RESPONSE_BYTES_MAX: usize = 100 << 20;
const CLIENT_ID: &str = "corelog-cli";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {bootstrap}: {source} (is a broker running there? set -b or {BROKERS_ENV})")]
    Connect {
        bootstrap: String,
        source: std::io::Error,
    },
    #[error("talking to {broker}: {source}")]
    Io {
        broker: String,
        source: std::io::Error,
    },
    #[error("{broker} sent a response we cannot read: {why}")]
    Protocol { broker: String, why: String },
    #[error("{broker} refused the login: {why} (check the sasl.* settings of --command-config)")]
    Auth { broker: String, why: String },
    #[error("{broker} does not serve {api} versions {}-{} (upgrade the broker)", ours.0, ours.1)]
    Unsupported {
        broker: String,
        api: String,
        ours: (i16, i16),
    },
}

pub struct Client {
    stream: crate::cli::security::Stream,
    broker: String,
    correlation_id: i32,
    /// api key → (min, max) version the broker serves, from ApiVersions on first need.
    versions: Option<HashMap<i16, (i16, i16)>>,
}

impl Client {
    /// Connects to the first address of the comma-separated `bootstrap` list that answers.
    pub fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        let mut last = std::io::Error::other("empty broker list");
        for broker in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
        {
            let addrs = match broker.to_socket_addrs() {
                Ok(a) => a,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                    Ok(stream) => {
                        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
                        let _ = stream.set_nodelay(true);
                        let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        let stream =
                            crate::cli::security::Stream::wrap(stream, host).map_err(|source| {
                                ClientError::Io {
                                    broker: broker.to_string(),
                                    source,
                                }
                            })?;
                        let mut client = Client {
                            stream,
                            broker: broker.to_string(),
                            correlation_id: 0,
                            versions: None,
                        };
                        if let Some(login) =
                            crate::cli::security::current().and_then(|s| s.sasl.as_ref())
                        {
                            client.login(login)?;
                        }
                        return Ok(client);
                    }
                    Err(e) => last = e,
                }
            }
        }
        Err(ClientError::Connect {
            bootstrap: bootstrap.to_string(),
            source: last,
        })
    }

    /// Sends `request` as `api` version `version` and decodes the response.
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        self.send(api, version, request)?;
        self.receive(api, version)
    }

    /// The highest version of `api` in `ours` (min, max) that the broker also serves,
    /// asked once per connection with ApiVersions v0 (which every broker answers).
    pub fn version(&mut self, api: ApiKey, ours: (i16, i16)) -> Result<i16, ClientError> {
        if self.versions.is_none() {
            let resp: ApiVersionsResponse =
                self.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())?;
            if resp.error_code != 0 {
                return Err(ClientError::Protocol {
                    broker: self.broker.clone(),
                    why: format!("ApiVersions answered error code {}", resp.error_code),
                });
            }
            self.versions = Some(
                resp.api_keys
                    .iter()
                    .map(|k| (k.api_key, (k.min_version, k.max_version)))
                    .collect(),
            );
        }
        let theirs = self
            .versions
            .as_ref()
            .and_then(|v| v.get(&(api as i16)).copied());
        match theirs {
            Some((min, max)) if min <= ours.1 && ours.0 <= max => Ok(max.min(ours.1)),
            _ => Err(ClientError::Unsupported {
                broker: self.broker.clone(),
                api: format!("{api:?}"),
                ours,
            }),
        }
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub fn send<Req: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<(), ClientError> {
        self.correlation_id += 1;
        let frame = encode_frame(api, version, self.correlation_id, request).map_err(|why| {
            ClientError::Protocol {
                broker: self.broker.clone(),
                why,
            }
        })?;
        self.stream
            .write_all(&frame)
            .map_err(|source| ClientError::Io {
                broker: self.broker.clone(),
                source,
            })
    }

    /// The connection's socket, for callers that pipeline requests themselves
    /// (`corelog bench`); `None` over TLS (a SASL login over plain TCP is done by now).
    pub fn into_stream(self) -> Option<TcpStream> {
        self.stream.into_plain()
    }

    /// SaslHandshake v1, then SaslAuthenticate v1 with the mechanism's tokens.
    fn login(&mut self, login: &crate::cli::security::SaslLogin) -> Result<(), ClientError> {
        use crate::security::scram::ClientExchange;
        use crate::security::SaslMechanism;
        use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str(login.mechanism.name());
        let resp: SaslHandshakeResponse = self.call(ApiKey::SaslHandshake, 1, &hs)?;
        if resp.error_code != 0 {
            return Err(self.auth_error(format!(
                "mechanism {} not enabled (the broker offers {:?})",
                login.mechanism.name(),
                resp.mechanisms
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
            )));
        }
        match login.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", login.username, login.password);
                self.authenticate(token.into_bytes())?;
            }
            SaslMechanism::Scram(m) => {
                let (mut ex, first) = ClientExchange::new(m, &login.username, &login.password);
                let server_first = self.authenticate(first)?;
                let fin = ex
                    .client_final(&server_first)
                    .map_err(|e| self.auth_error(e.to_string()))?;
                let server_final = self.authenticate(fin)?;
                if !ex.verify_server(&server_final) {
                    return Err(self.auth_error("the broker's SCRAM signature is wrong".into()));
                }
            }
        }
        Ok(())
    }

    fn authenticate(&mut self, token: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = bytes::Bytes::from(token);
        let resp: SaslAuthenticateResponse = self.call(ApiKey::SaslAuthenticate, 1, &req)?;
        if resp.error_code != 0 {
            return Err(self.auth_error(format!(
                "error {}: {}",
                resp.error_code,
                resp.error_message.as_deref().unwrap_or("")
            )));
        }
        Ok(resp.auth_bytes.to_vec())
    }

    fn auth_error(&self, why: String) -> ClientError {
        ClientError::Auth {
            broker: self.broker.clone(),
            why,
        }
    }

    fn receive<Resp: Decodable>(&mut self, api: ApiKey, version: i16) -> Result<Resp, ClientError> {
        let protocol = |why: String| ClientError::Protocol {
            broker: self.broker.clone(),
            why,
        };
        let io = |source| ClientError::Io {
            broker: self.broker.clone(),
            source,
        };
        let (correlation_id, mut body) =
            read_frame(&mut self.stream, api, version).map_err(|e| match e {
                FrameError::Io(source) => io(source),
                FrameError::Protocol(why) => protocol(why),
            })?;
        if correlation_id != self.correlation_id {
            return Err(protocol(format!(
                "correlation id {} for request {}",
                correlation_id, self.correlation_id
            )));
        }
        let resp = Resp::decode(&mut body, version).map_err(|e| protocol(e.to_string()))?;
        if body.has_remaining() {
            return Err(protocol(format!(
                "{} bytes left after the response",
                body.remaining()
            )));
        }
        Ok(resp)
    }
}

/// Encodes one request as a frame: size prefix, header, body.
pub fn encode_frame<Req: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> Result<BytesMut, String> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0; 4]);
    header
        .encode(&mut frame, api.request_header_version(version))
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut frame, version)
        .map_err(|e| e.to_string())?;
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    Protocol(String),
}

/// Reads one response frame of `api`/`version`: its correlation id and the body after
/// the response header. Frames over `RESPONSE_BYTES_MAX` are refused.
pub fn read_frame(
    stream: &mut impl Read,
    api: ApiKey,
    version: i16,
) -> Result<(i32, BytesMut), FrameError> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).map_err(FrameError::Io)?;
    let size = i32::from_be_bytes(prefix);
    if size < 0 || size as usize > RESPONSE_BYTES_MAX {
        return Err(FrameError::Protocol(format!("response size {size}")));
    }
    let mut body = BytesMut::zeroed(size as usize);
    stream.read_exact(&mut body).map_err(FrameError::Io)?;
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
        .map_err(|e| FrameError::Protocol(e.to_string()))?;
    Ok((header.correlation_id, body))
}

/// Metadata version the tools speak (topic ids, no flexible-version surprises).
pub const METADATA_VERSION: i16 = 9;

/// One connection per broker of a cluster, opened when first needed, at the address
/// each broker advertises in Metadata; requests for a partition go to its leader.
pub struct Cluster {
    /// The first connection, until Metadata tells which broker it is.
    boot: Option<Client>,
    /// node id → advertised host:port
    brokers: HashMap<i32, String>,
    conns: HashMap<i32, Client>,
}

impl Cluster {
    pub fn connect(bootstrap: &str) -> Result<Cluster, ClientError> {
        Ok(Cluster {
            boot: Some(Client::connect(bootstrap)?),
            brokers: HashMap::new(),
            conns: HashMap::new(),
        })
    }

    /// Any connected broker, for requests every broker answers (Metadata, FindCoordinator).
    pub fn any(&mut self) -> &mut Client {
        if let Some(boot) = self.boot.as_mut() {
            return boot;
        }
        self.conns
            .values_mut()
            .next()
            .expect("a cluster always holds at least one connection")
    }

    /// Metadata for `topics` (all when None); remembers the brokers' addresses.
    pub fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse, ClientError> {
        let mut req = MetadataRequest::default();
        req.allow_auto_topic_creation = auto_create;
        req.topics = topics.map(|ns| {
            ns.iter()
                .map(|n| {
                    let mut t = MetadataRequestTopic::default();
                    t.name = Some(TopicName(StrBytes::from_string(n.clone())));
                    t
                })
                .collect()
        });
        let resp: MetadataResponse = self.any().call(ApiKey::Metadata, METADATA_VERSION, &req)?;
        for b in &resp.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
        }
        // The bootstrap connection becomes the connection of the broker it reached
        // (matched by socket address, so localhost and 127.0.0.1 are one broker).
        if let Some(boot) = self.boot.take() {
            let peer = boot.stream.peer_addr().ok();
            let reached = |addr: &String| {
                *addr == boot.broker
                    || addr
                        .to_socket_addrs()
                        .is_ok_and(|mut a| a.any(|a| Some(a) == peer))
            };
            match self.brokers.iter().find(|(_, addr)| reached(addr)) {
                Some((node, _)) if !self.conns.contains_key(node) => {
                    self.conns.insert(*node, boot);
                }
                _ => self.boot = Some(boot),
            }
        }
        Ok(resp)
    }

    /// The connection to broker `node` (known from Metadata), opened on first use.
    pub fn broker(&mut self, node: i32) -> Result<&mut Client, ClientError> {
        if !self.conns.contains_key(&node) {
            let addr = self
                .brokers
                .get(&node)
                .cloned()
                .ok_or_else(|| ClientError::Protocol {
                    broker: format!("node {node}"),
                    why: "not among the brokers Metadata listed".to_string(),
                })?;
            self.conns.insert(node, Client::connect(&addr)?);
        }
        Ok(self.conns.get_mut(&node).expect("inserted above"))
    }

    /// Records a broker's address learnt elsewhere (FindCoordinator) and connects to it.
    pub fn broker_at(
        &mut self,
        node: i32,
        host: &str,
        port: i32,
    ) -> Result<&mut Client, ClientError> {
        let addr = format!("{host}:{port}");
        if self.brokers.get(&node) != Some(&addr) {
            self.conns.remove(&node);
            self.brokers.insert(node, addr);
        }
        self.broker(node)
    }

    /// The node ids (ascending) of the listed brokers that accept a connection and
    /// answer ApiVersions on it, each now connected. A listed broker that does not is
    /// skipped with a warning on stderr saying what the answer lacks (`missing`, e.g.
    /// "its log dirs are not listed"): a corelog cluster lists a broker that just died
    /// for a few seconds, as Kafka does until its session runs out. The first exchange
    /// matters: a process killed a moment ago can still complete a TCP handshake (its
    /// listening socket outlives it while its io_uring is torn down) and then reset the
    /// connection. An error only when none answers.
    pub fn reachable(&mut self, missing: &str) -> Result<Vec<i32>, ClientError> {
        let mut reached = Vec::new();
        let mut refused = None;
        for node in self.node_ids() {
            let answered = self
                .broker(node)
                .and_then(|c| c.version(ApiKey::ApiVersions, (0, 0)).map(|_| ()));
            match answered {
                Ok(()) => reached.push(node),
                Err(e @ (ClientError::Connect { .. } | ClientError::Io { .. })) => {
                    eprintln!("warning: broker {node} is unreachable, {missing}: {e}");
                    self.forget(node);
                    refused = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match refused {
            Some(e) if reached.is_empty() => Err(e),
            _ => Ok(reached),
        }
    }

    /// Node ids of the brokers Metadata listed (call `metadata` first), ascending.
    pub fn node_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The advertised host:port of broker `node`, once Metadata named it.
    pub fn address(&self, node: i32) -> Option<&str> {
        self.brokers.get(&node).map(String::as_str)
    }

    /// Drops the connection to `node` after an I/O error; the next use reconnects.
    pub fn forget(&mut self, node: i32) {
        self.conns.remove(&node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that completes the handshake and closes each connection unanswered,
    /// as a broker killed a moment ago can; and a port nobody listens on.
    #[test]
    fn a_broker_that_accepts_and_hangs_up_is_not_reachable() {
        let hangs_up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hangs_up_addr = hangs_up.local_addr().unwrap().to_string();
        let closer = std::thread::spawn(move || {
            for stream in hangs_up.incoming().take(1) {
                drop(stream);
            }
        });
        let refused_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let mut cluster = Cluster {
            boot: None,
            brokers: HashMap::from([(1, hangs_up_addr), (2, refused_addr)]),
            conns: HashMap::new(),
        };
        let none = cluster.reachable("nothing is listed");
        assert!(
            matches!(
                none,
                Err(ClientError::Io { .. } | ClientError::Connect { .. })
            ),
            "{:?}",
            none.map_err(|e| e.to_string())
        );
        assert!(cluster.conns.is_empty(), "a hung-up connection was kept");
        closer.join().unwrap();
    }
}
