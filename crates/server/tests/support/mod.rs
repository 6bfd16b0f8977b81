//! Shared by the server's integration tests: an in-process server on loopback ports chosen by
//! the OS, stopped when dropped. Each test binary uses a subset of it.
#![allow(
    dead_code,
    reason = "each integration test binary uses a different subset"
)]

use std::net::SocketAddr;
use std::thread::JoinHandle;

use stompbox_server::{ServerBuilder, ShutdownHandle};

pub(crate) struct Running {
    pub(crate) http: SocketAddr,
    pub(crate) stomp: SocketAddr,
    pub(crate) stop: ShutdownHandle,
    pub(crate) thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(crate) fn start(builder: ServerBuilder) -> Self {
        let server = builder
            .http("127.0.0.1:0".parse().unwrap())
            .stomp("127.0.0.1:0".parse().unwrap())
            .handle_signals(false)
            .stats_interval_ms(None)
            .build()
            .unwrap();
        let (http, stomp) = (server.http_addr().unwrap(), server.stomp_addr().unwrap());
        let stop = server.shutdown_handle();
        let thread = Some(std::thread::spawn(move || server.run()));
        Self {
            http,
            stomp,
            stop,
            thread,
        }
    }

    pub(crate) fn demo() -> Self {
        Self::start(
            ServerBuilder::new()
                .handler("/app/chat", stompbox_server::chat_handler)
                .handler("/app/echo", stompbox_server::echo_handler),
        )
    }

    pub(crate) fn stop(mut self) -> std::io::Result<()> {
        self.stop.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }

    /// The STOMP-over-WebSocket URL of this server.
    pub(crate) fn ws(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// The raw STOMP/TCP URL of this server.
    pub(crate) fn tcp(&self) -> String {
        format!("stomp://{}", self.stomp)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.shutdown();
            let _ = t.join();
        }
    }
}
