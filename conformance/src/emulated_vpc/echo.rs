//! The probes of the emulated VPC: a UDP echo server that names the source address it saw,
//! and the client that asks it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kernel::PrivateNetns;

/// Runs `f` in `ns` (sockets made there stay there).
fn run_in<R>(ns: &PrivateNetns, f: impl FnOnce() -> R) -> R {
    ns.netns()
        .and_then(|netns| netns.run(f))
        .expect("enter a test namespace")
}

/// The UDP port of the echo servers [`super::EmulatedVpc::start`] runs on the peer and
/// internet hosts.
pub const ECHO_PORT: u16 = 7777;

/// A UDP server answering every datagram with `seen-from <source address>`, so a test sees
/// the address a packet arrived from after any SNAT on the way.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Serves on `addr:port` inside `ns` until dropped.
    pub fn start(ns: &PrivateNetns, addr: Ipv4Addr, port: u16) -> EchoServer {
        let socket = run_in(ns, || UdpSocket::bind((addr, port)))
            .unwrap_or_else(|e| panic!("bind the echo server on {addr}:{port}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("echo server: read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("udp-echo".into())
                .spawn(move || {
                    let mut buf = [0u8; 512];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((_, from)) = socket.recv_from(&mut buf) {
                            let answer = format!("seen-from {}", from.ip());
                            let _ = socket.send_to(answer.as_bytes(), from);
                        }
                    }
                })
                .expect("spawn the echo server")
        };
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Probes sent before a destination counts as unreachable: a loaded test machine may take
/// longer than one timeout to answer the first (an ARP resolution on the way included).
pub const PROBES: usize = 3;

/// Sends datagrams from `ns` (from `source`, or the address the routes pick) to an echo
/// server at `dst`, and returns the source address the server saw; `None` when none of
/// [`PROBES`] probes got an answer within a second (dropped on the way there or back).
pub fn seen_from(ns: &PrivateNetns, source: Option<Ipv4Addr>, dst: Ipv4Addr) -> Option<Ipv4Addr> {
    let bind = SocketAddr::from((source.unwrap_or(Ipv4Addr::UNSPECIFIED), 0));
    let socket = run_in(ns, || UdpSocket::bind(bind))
        .unwrap_or_else(|e| panic!("bind a probe socket on {bind}: {e}"));
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("probe: read timeout");
    let mut buf = [0u8; 512];
    for _ in 0..PROBES {
        socket
            .send_to(b"probe", (dst, ECHO_PORT))
            .unwrap_or_else(|e| panic!("send a probe to {dst}: {e}"));
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            return std::str::from_utf8(&buf[..len])
                .ok()?
                .strip_prefix("seen-from ")?
                .parse()
                .ok();
        }
    }
    None
}
