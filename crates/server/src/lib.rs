//! The stompbox server: STOMP over WebSocket and over TCP, on a single-threaded `mio` event loop,
//! with the embedded in-memory broker and a demo page.
//!
//! The binary `stompbox` is this library plus flags; the library lets a Rust program build its own
//! server with [`ServerBuilder`]: listeners, prefixes, limits, a CONNECT authentication hook, an
//! Origin allow-list and `/app` handlers written in Rust.
//!
//! ```
//! use stompbox_server::{AppMessage, Reply, ServerBuilder};
//!
//! let server = ServerBuilder::new()
//!     .http("127.0.0.1:0".parse().unwrap())   // port 0: any free port
//!     .no_stomp()
//!     .handle_signals(false)
//!     .handler("/app/chat", stompbox_server::chat_handler)
//!     .handler("/app/greet", |m: &AppMessage, r: &mut Reply| {
//!         r.to_sender("/user/queue/greetings", format!("hello {}", m.text().unwrap_or("?")));
//!     })
//!     .build()
//!     .expect("bind");
//! let addr = server.http_addr().unwrap();
//! let stop = server.shutdown_handle();
//! let thread = std::thread::spawn(move || server.run());
//!
//! // Any HTTP client can read the stats; a STOMP client would connect to ws://{addr}/ws.
//! use std::io::{Read, Write};
//! let mut s = std::net::TcpStream::connect(addr).unwrap();
//! s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut reply = String::new();
//! s.read_to_string(&mut reply).unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200"));
//! assert!(reply.contains("\"connections_current\""));
//!
//! stop.shutdown();
//! thread.join().unwrap().unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
mod builder;
pub mod config;
mod http;
mod hub;
mod relay;
mod server;

pub use app::{AppHandler, AppMessage, Outgoing, Reply, Target, chat_handler, echo_handler};
pub use builder::{AuthDecision, AuthHook, AuthRequest, ServerBuilder};
pub use config::{Config, ConfigError};
pub use http::{INDEX_HTML, STOMPBOX_JS};
pub use relay::RelaySettings;
pub use server::{Server, ShutdownHandle, StartError};
