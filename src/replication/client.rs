//! A Kafka client connection for a shard's replica fetcher: one request at a time,
//! on the shard's own reactor (glommio), requests and responses encoded with the
//! kafka-protocol crate as the CLI client does.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::runtime::TcpStream;

/// The largest response a follower accepts: a Fetch response is bounded by the
/// request's max_bytes (`fetcher::FETCH_BYTES_MAX`) plus headers.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

pub struct Connection {
    stream: TcpStream,
    pub addr: String,
    correlation_id: i32,
}

/// Why a connect failed, and whether it was actively refused (nothing listens).
#[derive(Debug)]
pub struct ConnectFailure {
    pub refused: bool,
    pub why: String,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl Connection {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, ConnectFailure> {
        let connect = TcpStream::connect(addr).map(|r| {
            r.map_err(|e| {
                let e = std::io::Error::from(e);
                ConnectFailure {
                    refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
                    why: e.to_string(),
                }
            })
        });
        let fut = std::pin::pin!(connect);
        let timer = std::pin::pin!(crate::runtime::sleep(timeout));
        let stream = match futures::future::select(fut, timer).await {
            futures::future::Either::Left((r, _)) => r?,
            futures::future::Either::Right(_) => {
                return Err(ConnectFailure {
                    refused: false,
                    why: format!("no answer within {timeout:?}"),
                })
            }
        };
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
