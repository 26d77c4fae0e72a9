//! The minimal HTTP/1.1 the admin listener speaks: GET only, one request per
//! connection (`Connection: close`), a request head of at most [`REQUEST_BYTES_MAX`],
//! no body. Pure functions, so parsing is tested without sockets.

/// Largest request head (request line and headers) accepted.
pub const REQUEST_BYTES_MAX: usize = 8 << 10;
/// Most header lines accepted.
pub const HEADERS_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `key=value` pairs of the query, in order (no percent-decoding: the admin API's
    /// keys and values are plain words).
    pub query: Vec<(String, String)>,
}

impl Request {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The head is longer than [`REQUEST_BYTES_MAX`] (answered 431).
    TooLarge,
    /// Not an HTTP/1.x request head (answered 400).
    Malformed(&'static str),
}

/// Where the request head ends (just past the blank line), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete request head (`head_end` found its end).
pub fn parse_request(head: &[u8]) -> Result<Request, ParseError> {
    if head.len() > REQUEST_BYTES_MAX {
        return Err(ParseError::TooLarge);
    }
    let text = std::str::from_utf8(head).map_err(|_| ParseError::Malformed("not UTF-8"))?;
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or(ParseError::Malformed("no blank line after the headers"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed("bad request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ParseError::Malformed("bad method"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ParseError::Malformed("not HTTP/1.0 or HTTP/1.1"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(ParseError::Malformed("bad request target"));
    }
    let mut headers = 0;
    for line in lines {
        headers += 1;
        if headers > HEADERS_MAX {
            return Err(ParseError::TooLarge);
        }
        match line.split_once(':') {
            Some((name, _)) if !name.is_empty() && !name.contains([' ', '\t']) => {}
            _ => return Err(ParseError::Malformed("bad header line")),
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
    })
}

/// A complete response with `Connection: close`.
pub fn response(status: u16, content_type: &str, body: &[u8], extra_headers: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A plain-text error answer.
pub fn error_response(status: u16, why: &str, extra_headers: &str) -> Vec<u8> {
    response(
        status,
        "text/plain; charset=utf-8",
        format!("{status} {}: {why}\n", reason(status)).as_bytes(),
        extra_headers,
    )
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A response's status code and body (the CLI's side).
pub fn parse_response(data: &[u8]) -> Result<(u16, &[u8]), String> {
    let end = head_end(data).ok_or("the response has no complete header")?;
    let head = std::str::from_utf8(&data[..end]).map_err(|_| "the response header is not UTF-8")?;
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    match (version.starts_with("HTTP/1."), status) {
        (true, Some(status)) => Ok((status, &data[end..])),
        _ => Err(format!("not an HTTP response: {status_line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_with_query_and_headers() {
        let head = b"GET /v1/profile?reset=true&x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
        assert_eq!(head_end(head), Some(head.len()));
        let r = parse_request(head).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/v1/profile");
        assert_eq!(r.query_value("reset"), Some("true"));
        assert_eq!(r.query_value("x"), Some(""));
        assert_eq!(r.query_value("y"), None);
        let r = parse_request(b"POST /metrics HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/metrics"));
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /m\x01 HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(bad), Err(ParseError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn oversized_requests_are_refused() {
        let mut big = b"GET /".to_vec();
        big.extend(std::iter::repeat_n(b'a', REQUEST_BYTES_MAX));
        big.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(parse_request(&big), Err(ParseError::TooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..=HEADERS_MAX {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), Err(ParseError::TooLarge));
    }

    #[test]
    fn responses_close_and_parse_back() {
        let r = response(200, "text/plain", b"hi", "");
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        assert_eq!(parse_response(&r).unwrap(), (200, &b"hi"[..]));
        let e = error_response(405, "only GET", "Allow: GET\r\n");
        let (status, body) = parse_response(&e).unwrap();
        assert_eq!(
            (status, body),
            (405, &b"405 Method Not Allowed: only GET\n"[..])
        );
        assert!(String::from_utf8_lossy(&e).contains("\r\nAllow: GET\r\n"));
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }
}
