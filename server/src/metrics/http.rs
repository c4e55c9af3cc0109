//! The scrape endpoint's HTTP/1.1 handling: request bytes in, a routing decision and response
//! bytes out.
//!
//! Two steps, as in any framing code here: [`route`] looks at what has been received so far and
//! says whether the request head is complete (parsed with `httparse`, no allocation), and if so
//! what to answer; [`response`] builds the bytes. No sockets here, so every rule is unit- and
//! property-tested. The server answers one request per connection (`Connection: close`), which
//! is what Prometheus does anyway, and never reads a body.

use std::fmt::Write;

/// Headers accepted in one request; more is answered with 431.
const MAX_HEADERS: usize = 32;

/// What the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET` (or `HEAD`: same head, no body) of the configured path: the exposition.
    Metrics {
        /// `HEAD`: send the headers only.
        head_only: bool,
    },
    /// Any other path: 404.
    NotFound,
    /// Another method on the configured path: 405.
    MethodNotAllowed,
    /// Not an HTTP/1.x request: 400.
    BadRequest,
    /// The request head exceeds the size or header-count limit: 431.
    TooLarge,
}

/// The verdict on the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The head is not complete yet and the limit is not reached: read more.
    Incomplete,
    /// Answer this.
    Respond(Route),
}

/// Decides what to do with `received` (everything read so far, at most `max_request_bytes`).
pub(crate) fn route(received: &[u8], metrics_path: &str, max_request_bytes: usize) -> Progress {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(received) {
        Ok(httparse::Status::Complete(_)) => {
            // httparse fills method and path on a complete parse.
            let (Some(method), Some(target)) = (request.method, request.path) else {
                return Progress::Respond(Route::BadRequest);
            };
            // The query string does not select another resource.
            let path = target.split_once('?').map_or(target, |(path, _)| path);
            Progress::Respond(if path != metrics_path {
                Route::NotFound
            } else if method == "GET" {
                Route::Metrics { head_only: false }
            } else if method == "HEAD" {
                Route::Metrics { head_only: true }
            } else {
                Route::MethodNotAllowed
            })
        }
        Ok(httparse::Status::Partial) if received.len() >= max_request_bytes => {
            Progress::Respond(Route::TooLarge)
        }
        Ok(httparse::Status::Partial) => Progress::Incomplete,
        Err(httparse::Error::TooManyHeaders) => Progress::Respond(Route::TooLarge),
        Err(_) => Progress::Respond(Route::BadRequest),
    }
}

/// The full response for `route`; `metrics_body` is the rendered exposition (used for
/// [`Route::Metrics`] only).
pub(crate) fn response(route: Route, metrics_body: &str, content_type: &str) -> Vec<u8> {
    let (status, content_type, body, head_only, allow) = match route {
        Route::Metrics { head_only } => ("200 OK", content_type, metrics_body, head_only, false),
        Route::NotFound => ("404 Not Found", PLAIN, "not found\n", false, false),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            PLAIN,
            "method not allowed\n",
            false,
            true,
        ),
        Route::BadRequest => ("400 Bad Request", PLAIN, "bad request\n", false, false),
        Route::TooLarge => (
            "431 Request Header Fields Too Large",
            PLAIN,
            "request too large\n",
            false,
            false,
        ),
    };
    let mut head = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write!(
        head,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if allow {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

/// Content type of the error bodies.
const PLAIN: &str = "text/plain; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 8192;

    fn route_of(request: &str) -> Progress {
        route(request.as_bytes(), "/metrics", LIMIT)
    }

    #[test]
    fn get_of_the_path_serves_metrics() {
        assert_eq!(
            route_of("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Progress::Respond(Route::Metrics { head_only: false })
        );
        assert_eq!(
            route_of("GET /metrics?name[]=x HTTP/1.0\r\n\r\n"),
            Progress::Respond(Route::Metrics { head_only: false })
        );
        assert_eq!(
            route_of("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Progress::Respond(Route::Metrics { head_only: true })
        );
    }

    #[test]
    fn other_paths_methods_and_garbage() {
        assert_eq!(
            route_of("GET / HTTP/1.1\r\n\r\n"),
            Progress::Respond(Route::NotFound)
        );
        assert_eq!(
            route_of("GET /metricsx HTTP/1.1\r\n\r\n"),
            Progress::Respond(Route::NotFound)
        );
        assert_eq!(
            route_of("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
            Progress::Respond(Route::MethodNotAllowed)
        );
        // A TLS ClientHello sent to the plain-HTTP endpoint.
        assert_eq!(
            route(
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                "/metrics",
                LIMIT
            ),
            Progress::Respond(Route::BadRequest)
        );
        assert_eq!(
            route_of("GET /metrics SPDY/9\r\n\r\n"),
            Progress::Respond(Route::BadRequest)
        );
    }

    #[test]
    fn partial_head_waits_until_the_limit() {
        assert_eq!(
            route_of("GET /metrics HTTP/1.1\r\nHost:"),
            Progress::Incomplete
        );
        let long = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(LIMIT));
        assert_eq!(route_of(&long), Progress::Respond(Route::TooLarge));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("H{i}: v\r\n"))
            .collect();
        assert_eq!(
            route_of(&format!("GET /metrics HTTP/1.1\r\n{many}\r\n")),
            Progress::Respond(Route::TooLarge)
        );
    }

    #[test]
    fn responses_have_status_length_and_close() {
        let ok = String::from_utf8(response(
            Route::Metrics { head_only: false },
            "a 1\n",
            "text/plain; version=0.0.4",
        ))
        .expect("ascii");
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 4\r\nConnection: close\r\n\r\na 1\n"
        );
        let head = response(Route::Metrics { head_only: true }, "a 1\n", "t");
        assert!(head.ends_with(b"Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let not_allowed =
            String::from_utf8(response(Route::MethodNotAllowed, "", "t")).expect("ascii");
        assert!(not_allowed.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(not_allowed.contains("\r\nAllow: GET, HEAD\r\n"));
        for (route, status) in [
            (Route::NotFound, "404"),
            (Route::BadRequest, "400"),
            (Route::TooLarge, "431"),
        ] {
            let text = String::from_utf8(response(route, "", "t")).expect("ascii");
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_respect_the_limit(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let limit = 512;
            let progress = route(&bytes, "/metrics", limit);
            if bytes.len() >= limit {
                prop_assert_ne!(progress, Progress::Incomplete);
            }
        }

        #[test]
        fn every_strict_prefix_of_a_valid_request_is_incomplete(
            path in "/[a-z]{0,12}",
            header_values in proptest::collection::vec("[a-zA-Z0-9 ]{0,20}", 0..6),
        ) {
            let headers: String = header_values.iter().enumerate().map(|(i, v)| format!("X-{i}: {v}\r\n")).collect();
            let request = format!("GET {path} HTTP/1.1\r\n{headers}\r\n");
            let bytes = request.as_bytes();
            for end in 0..bytes.len() {
                prop_assert_eq!(route(&bytes[..end], "/metrics", LIMIT), Progress::Incomplete, "prefix {:?}", &request[..end]);
            }
            let expected = if path == "/metrics" { Route::Metrics { head_only: false } } else { Route::NotFound };
            prop_assert_eq!(route(bytes, "/metrics", LIMIT), Progress::Respond(expected));
        }
    }
}
