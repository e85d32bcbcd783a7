//! The HTTP server: hyper's HTTP/1.1 connections on a small tokio runtime,
//! with a limit on everything a client controls.
//!
//! What a client can hold, and for how long:
//!
//! * a connection: at most [`Limits::connections_max`] at once; beyond that
//!   the accept loop stops accepting and new connections wait in the
//!   kernel's accept queue;
//! * a request head: at most [`Limits::header_bytes_max`] (larger gets 431),
//!   within [`Limits::header_timeout`] of the connection's opening or of its
//!   previous response (so an idle kept-alive connection is closed then too);
//!   hyper answers malformed framing (a negative, non-numeric or
//!   conflicting `Content-Length`, a bad chunk size) with 400 and closes;
//! * a body: at most the route's limit ([`http::body_bytes_max`], 413
//!   beyond), in full within [`Limits::body_timeout`] (408), and only while
//!   all bodies held at once stay within [`Limits::body_memory_bytes`]
//!   (a request waits for room within its body timeout, then gets 503);
//! * a response: a write that makes no progress for
//!   [`Limits::write_timeout`] closes the connection;
//! * a thread: none. Connections are tasks on two worker threads; a put is
//!   submitted to the node and its commit awaited as a task (no thread
//!   waits for it, so puts in flight are bounded by connections, not
//!   threads); any other request runs against the node (which blocks while
//!   it works) on one of at most [`Limits::threads`] blocking threads, after
//!   its body is read, so a slow client never holds a thread.
//!
//! A body that a route does not read (`GET /status` announcing a terabyte)
//! is never read nor allocated: the reply goes out and hyper closes the
//! connection instead of keeping it alive.

use crate::http::{self, Reply, Service, Started};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use raft_core::Outcome;
use raft_io_std::Error;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// How long the accept loop pauses after a failed accept (out of file
/// descriptors, say) before it tries again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server's limits (`raft-kv --help`, `docs/operations.md`).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub connections_max: usize,
    /// Largest request head, request line and headers together.
    pub header_bytes_max: usize,
    /// Time for a request's head to arrive; also the idle limit.
    pub header_timeout: Duration,
    /// Time for a request's body to arrive in full.
    pub body_timeout: Duration,
    /// Time a response may stall unsent before the connection closes.
    pub write_timeout: Duration,
    /// Request bodies held at once, all connections together.
    pub body_memory_bytes: usize,
    /// Blocking threads running requests against the node.
    pub threads: usize,
}

/// A running server; [`Server::stop`] ends it.
pub struct Server {
    runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Serves `listener` (already bound) with `service` under `limits`.
    pub fn start(
        listener: std::net::TcpListener,
        service: Arc<Service>,
        limits: Limits,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(limits.threads)
            .thread_name("http")
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, service, Arc::new(limits)));
        Ok(Server { runtime })
    }

    /// Stops accepting, drops every connection; requests running against
    /// the node get a moment to finish.
    pub fn stop(self) {
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    limits: Arc<Limits>,
) {
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let bodies = Arc::new(Semaphore::new(limits.body_memory_bytes));
    loop {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            return; // never closed
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (service, limits, bodies) = (
            Arc::clone(&service),
            Arc::clone(&limits),
            Arc::clone(&bodies),
        );
        tokio::spawn(async move {
            let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
            let handler = {
                let limits = Arc::clone(&limits);
                service_fn(move |request| {
                    handle(
                        Arc::clone(&service),
                        Arc::clone(&limits),
                        Arc::clone(&bodies),
                        request,
                    )
                })
            };
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.header_bytes_max)
                .max_header_size(limits.header_bytes_max)
                .serve_connection(io, handler)
                .await;
            if let Err(e) = served {
                tracing::debug!("HTTP connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
}

/// One request: read its body within the limits, then run it against the
/// node on a blocking thread.
async fn handle(
    service: Arc<Service>,
    limits: Arc<Limits>,
    bodies: Arc<Semaphore>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let url = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let max = http::body_bytes_max(&parts.method, parts.uri.path());
    // Held until the reply is decided: the body stays in memory that long.
    let mut _room = None;
    let body = if max == 0 {
        drop(body);
        Bytes::new()
    } else {
        match read_body(body, max, &limits, &bodies).await {
            Ok((bytes, room)) => {
                _room = Some(room);
                bytes
            }
            Err(reply) => return Ok(response(reply)),
        }
    };
    let method = parts.method;
    // A put waits for its commit as a task, not on a blocking thread: the
    // blocking pool (`threads`) would otherwise cap the puts in flight.
    let reply = match service.start_put(&method, &url, &body) {
        Some(Started::Replied(reply)) => reply,
        Some(Started::Committing(pending)) => {
            let committed = tokio::time::timeout(service.timeout, pending)
                .await
                .unwrap_or(Err(Error::Timeout {
                    outcome: Outcome::Unknown,
                }));
            service.put_committed(committed, &url)
        }
        None => tokio::task::spawn_blocking(move || service.route(&method, &url, body))
            .await
            .unwrap_or_else(|e| {
                Reply::error(500, Outcome::Unknown, format!("request failed: {e}"))
            }),
    };
    Ok(response(reply))
}

/// Reads a body of at most `max` bytes within the body timeout, with room
/// for it in the body budget (returned, to hold while the body lives).
async fn read_body(
    body: Incoming,
    max: usize,
    limits: &Limits,
    bodies: &Arc<Semaphore>,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), Reply> {
    let too_large = || {
        Reply::error(
            413,
            Outcome::Definite,
            format!("body larger than {max} bytes"),
        )
    };
    let announced = body.size_hint().exact();
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let deadline = Instant::now() + limits.body_timeout;
    // A chunked body of unknown length may grow to `max`: reserve that.
    let reserve = announced.map_or(max, |n| n as usize).max(1);
    let room = match tokio::time::timeout_at(
        deadline,
        Arc::clone(bodies).acquire_many_owned(reserve as u32),
    )
    .await
    {
        Ok(Ok(room)) => room,
        _ => {
            let mut reply = Reply::error(
                503,
                Outcome::Definite,
                "too many request bodies in memory; try again",
            );
            reply.headers.push(("Retry-After", "1".into()));
            return Err(reply);
        }
    };
    match tokio::time::timeout_at(deadline, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok((collected.to_bytes(), room)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Reply::bad_request(format!("cannot read the body: {e}"))),
        Err(_) => Err(Reply::error(
            408,
            Outcome::Definite,
            format!(
                "the body did not arrive within {} ms",
                limits.body_timeout.as_millis()
            ),
        )),
    }
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    let all =
        std::iter::once(("Content-Type", reply.content_type.to_string())).chain(reply.headers);
    for (name, value) in all {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}

/// A TCP stream whose writes fail with `TimedOut` once one has made no
/// progress for `timeout`: a client that stops reading its responses
/// cannot hold its connection (and the response in memory) for ever.
struct WriteDeadline {
    stream: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    fn new(stream: TcpStream, timeout: Duration) -> WriteDeadline {
        WriteDeadline {
            stream,
            timeout,
            stalled: None,
        }
    }

    /// Passes a write's result on; a pending write arms (or checks) the
    /// stall timer, progress disarms it.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading its response",
        )))
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}
