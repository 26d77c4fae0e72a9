//! A Kafka client connection from one broker to another (a shard's replica fetcher, a
//! transaction coordinator's WriteTxnMarkers and AddPartitionsToTxn calls): one request
//! at a time, on the shard's own reactor (glommio), requests and responses encoded with
//! the kafka-protocol crate as the CLI client does.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::runtime::TcpStream;

/// The largest response a follower accepts: a Fetch response is bounded by the
/// request's max_bytes (`fetcher::FETCH_BYTES_MAX`) plus headers.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

/// The address live broker `node` registered with the quorum (its inter-broker
/// listener), or None when it is not live.
pub fn broker_addr(shard: &crate::broker::shard::Shard, node: i32) -> Option<String> {
    let cluster = shard.broker.cluster.as_ref()?;
    let image = cluster.image();
    image
        .live_brokers
        .iter()
        .find(|b| b.node_id == node)
        .map(|b| format!("{}:{}", b.host, b.port))
}

pub struct Connection {
    stream: TcpStream,
    pub addr: String,
    correlation_id: i32,
}

impl Connection {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, String> {
        let connect = TcpStream::connect(addr).map(|r| r.map_err(|e| e.to_string()));
        let stream = within(timeout, connect).await?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            addr: addr.to_string(),
            correlation_id: 0,
        })
    }

    /// Sends `request` and reads its response, all within `timeout`.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, String> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let want = self.correlation_id;
        let frame = crate::cli::client::encode_frame(api, version, want, request)?;
        let exchange = async {
            self.stream
                .write_all(&frame)
                .await
                .map_err(|e| e.to_string())?;
            let mut prefix = [0u8; 4];
            self.stream
                .read_exact(&mut prefix)
                .await
                .map_err(|e| e.to_string())?;
            let size = i32::from_be_bytes(prefix);
            if size < 0 || size as usize > RESPONSE_BYTES_MAX {
                return Err(format!("response size {size}"));
            }
            let mut body = BytesMut::zeroed(size as usize);
            self.stream
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            Ok(body)
        };
        let mut body = within(timeout, exchange).await?;
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
            .map_err(|e| e.to_string())?;
        if header.correlation_id != want {
            return Err(format!(
                "correlation id {} for request {want}",
                header.correlation_id
            ));
        }
        let resp = Resp::decode(&mut body, version).map_err(|e| e.to_string())?;
        if body.has_remaining() {
            return Err(format!("{} bytes after the response", body.remaining()));
        }
        Ok(resp)
    }
}

async fn within<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(crate::runtime::sleep(timeout));
    match futures::future::select(fut, timer).await {
        futures::future::Either::Left((r, _)) => r,
        futures::future::Either::Right(_) => Err(format!("no answer within {timeout:?}")),
    }
}
