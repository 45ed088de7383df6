//! Real packets for the policy delegate's tests: pod and client namespaces joined by veth
//! pairs, TCP and UDP listeners that record who reached them, and clients with short
//! timeouts that report whether a flow was allowed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kernel::{AddressOptions, Netlink, PrivateNetns, VethRequest};

/// How long a client waits before it calls a flow denied.
pub const TIMEOUT: Duration = Duration::from_millis(400);

/// Runs `f` in `ns`: sockets made there stay there.
pub fn run_in<R>(ns: &PrivateNetns, f: impl FnOnce() -> R) -> R {
    ns.netns()
        .and_then(|netns| netns.run(f))
        .expect("enter a test namespace")
}

fn netlink(ns: &PrivateNetns) -> Netlink {
    Netlink::in_netns(&ns.netns().expect("open test netns")).expect("netlink in test netns")
}

/// Brings `lo` up in `ns`.
pub fn lo_up(ns: &PrivateNetns) {
    let mut nl = netlink(ns);
    let lo = nl.link_by_name("lo").unwrap().expect("lo exists");
    nl.set_link_up(lo.index).unwrap();
}

/// A veth pair: `a_if` in `a` with `a_addrs`, `b_if` in `b` with `b_addrs`, both up (IPv6
/// without DAD, so addresses work at once).
pub fn wire(
    a: &PrivateNetns,
    a_if: &str,
    a_addrs: &[&str],
    b: &PrivateNetns,
    b_if: &str,
    b_addrs: &[&str],
) {
    let b_ns = b.netns().unwrap();
    let mut nl_a = netlink(a);
    nl_a.create_veth(&VethRequest {
        name: a_if.into(),
        peer_name: b_if.into(),
        peer_netns: Some(&b_ns),
        up: true,
        ..VethRequest::default()
    })
    .unwrap_or_else(|e| panic!("veth {a_if}/{b_if}: {e}"));
    let mut nl_b = netlink(b);
    for (nl, ifname, addrs) in [(&mut nl_a, a_if, a_addrs), (&mut nl_b, b_if, b_addrs)] {
        let link = nl.link_by_name(ifname).unwrap().expect("veth end exists");
        for addr in addrs {
            let net: IpNet = addr.parse().expect("test address");
            nl.add_address(
                link.index,
                net,
                AddressOptions {
                    nodad: true,
                    noprefixroute: false,
                },
            )
            .unwrap_or_else(|e| panic!("address {addr} on {ifname}: {e}"));
        }
        nl.set_link_up(link.index).unwrap();
    }
    wait_running(a, a_if);
    wait_running(b, b_if);
}

/// Waits (up to 5 s) until `ifname` in `ns` is running. A packet sent before the link
/// watcher has marked a new link running (and activated its queues) is dropped, and a lost
/// SYN would read as "denied"; under load the watcher can take most of a second.
pub fn wait_running(ns: &PrivateNetns, ifname: &str) {
    let mut nl = netlink(ns);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let link = nl
            .link_by_name(ifname)
            .unwrap()
            .unwrap_or_else(|| panic!("{ifname} exists"));
        if link.flags & IFF_RUNNING != 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ifname} never came up: {link:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `IFF_RUNNING`: the link is operationally up.
const IFF_RUNNING: u32 = 0x40;

/// One packet or connection a listener saw: from where, and when.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// The source address.
    pub from: IpAddr,
    /// When it arrived.
    pub at: Instant,
}

/// A TCP or UDP listener in a namespace, answering `ok` (TCP) or echoing (UDP), recording
/// every connection or datagram it got.
pub struct Listener {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// A TCP listener on `addr:port` in `ns`.
    pub fn tcp(ns: &PrivateNetns, addr: IpAddr, port: u16) -> Listener {
        let socket = run_in(ns, || TcpListener::bind((addr, port)))
            .unwrap_or_else(|e| panic!("bind tcp {addr}:{port}: {e}"));
        socket.set_nonblocking(true).unwrap();
        Listener::spawn(move |seen, stop| {
            while !stop.load(Ordering::Relaxed) {
                match socket.accept() {
                    Ok((mut stream, from)) => {
                        seen.lock().unwrap().push(Seen {
                            from: from.ip(),
                            at: Instant::now(),
                        });
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.write_all(b"ok");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
    }

    /// A TCP listener on `addr:port` in `ns` that answers `ok`, then keeps the connection
    /// and echoes what it gets until the client closes it: for flows that must outlive a
    /// policy change ([`Conversation`]).
    pub fn tcp_echo(ns: &PrivateNetns, addr: IpAddr, port: u16) -> Listener {
        let socket = run_in(ns, || TcpListener::bind((addr, port)))
            .unwrap_or_else(|e| panic!("bind tcp {addr}:{port}: {e}"));
        socket.set_nonblocking(true).unwrap();
        Listener::spawn(move |seen, stop| {
            while !stop.load(Ordering::Relaxed) {
                match socket.accept() {
                    Ok((mut stream, from)) => {
                        seen.lock().unwrap().push(Seen {
                            from: from.ip(),
                            at: Instant::now(),
                        });
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.write_all(b"ok");
                        // Ends when the client closes: no stop needed.
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 64];
                            while let Ok(n @ 1..) = stream.read(&mut buf) {
                                if stream.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
    }

    /// A UDP echo listener on `addr:port` in `ns`.
    pub fn udp(ns: &PrivateNetns, addr: IpAddr, port: u16) -> Listener {
        Listener::udp_with(ns, addr, port, true)
    }

    /// A UDP listener on `addr:port` in `ns` that records datagrams and never answers, so
    /// conntrack never sees their flows as established.
    pub fn udp_sink(ns: &PrivateNetns, addr: IpAddr, port: u16) -> Listener {
        Listener::udp_with(ns, addr, port, false)
    }

    fn udp_with(ns: &PrivateNetns, addr: IpAddr, port: u16, echo: bool) -> Listener {
        let socket = run_in(ns, || UdpSocket::bind((addr, port)))
            .unwrap_or_else(|e| panic!("bind udp {addr}:{port}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Listener::spawn(move |seen, stop| {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    seen.lock().unwrap().push(Seen {
                        from: from.ip(),
                        at: Instant::now(),
                    });
                    if echo {
                        let _ = socket.send_to(&buf[..len], from);
                    }
                }
            }
        })
    }

    fn spawn(
        body: impl FnOnce(Arc<Mutex<Vec<Seen>>>, Arc<AtomicBool>) + Send + 'static,
    ) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || body(seen, stop))
        };
        Listener {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends datagrams from `ns` (from `src`) to `dst:port` every millisecond until dropped.
pub struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

impl Sender {
    /// Starts sending.
    pub fn start(ns: &PrivateNetns, src: IpAddr, dst: IpAddr, port: u16) -> Sender {
        let socket = run_in(ns, || UdpSocket::bind((src, 0))).expect("bind sender");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    if socket.send_to(b"x", (dst, port)).is_ok() {
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                sent
            })
        };
        Sender {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sending; how many datagrams were sent.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One TCP connection kept open to a [`Listener::tcp_echo`], to see whether an established
/// flow still passes.
pub struct Conversation {
    stream: TcpStream,
}

impl Conversation {
    /// Connects from `ns` to `dst:port` and reads the listener's `ok`; panics if the flow
    /// is not allowed.
    pub fn open(ns: &PrivateNetns, dst: IpAddr, port: u16) -> Conversation {
        let mut stream = run_in(ns, || {
            TcpStream::connect_timeout(&SocketAddr::new(dst, port), TIMEOUT)
        })
        .unwrap_or_else(|e| panic!("connect to {dst}:{port}: {e}"));
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).expect("the listener's ok");
        assert_eq!(&buf, b"ok");
        Conversation { stream }
    }

    /// Whether one more byte goes there and back (a lost segment is retransmitted within
    /// the wait, so a drop shows as no answer).
    pub fn echoes(&mut self) -> bool {
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 1];
        self.stream.write_all(b"x").is_ok() && self.stream.read_exact(&mut buf).is_ok()
    }
}

/// What a client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The exchange completed (TCP: connected and read the answer; UDP: got the echo).
    Allow,
    /// Nothing came back within [`TIMEOUT`].
    Deny,
    /// The peer refused (TCP RST, ICMP unreachable): the packet got through.
    Refused,
}

/// A TCP connection from `ns` (from `src` when given) to `dst:port`.
pub fn tcp(ns: &PrivateNetns, src: Option<IpAddr>, dst: IpAddr, port: u16) -> Verdict {
    run_in(ns, || {
        let socket = match dst {
            IpAddr::V4(_) => nix_socket(false),
            IpAddr::V6(_) => nix_socket(true),
        };
        if let Some(src) = src {
            socket
                .bind(&SocketAddr::new(src, 0).into())
                .unwrap_or_else(|e| panic!("bind client to {src}: {e}"));
        }
        match socket.connect_timeout(&SocketAddr::new(dst, port).into(), TIMEOUT) {
            Ok(()) => {
                let mut stream: TcpStream = socket.into();
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                let mut buf = [0u8; 2];
                match stream.read_exact(&mut buf) {
                    Ok(()) if &buf == b"ok" => Verdict::Allow,
                    _ => Verdict::Deny,
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Verdict::Refused,
            Err(_) => Verdict::Deny,
        }
    })
}

fn nix_socket(v6: bool) -> socket2::Socket {
    let domain = if v6 {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .expect("tcp socket")
}

/// A UDP exchange from `ns` (from `src` when given) with an echo listener at `dst:port`:
/// two tries of [`TIMEOUT`].
pub fn udp(ns: &PrivateNetns, src: Option<IpAddr>, dst: IpAddr, port: u16) -> Verdict {
    let bind = SocketAddr::new(
        src.unwrap_or(match dst {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        }),
        0,
    );
    let socket = run_in(ns, || UdpSocket::bind(bind)).expect("bind udp client");
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..2 {
        if socket.send_to(b"ping", (dst, port)).is_err() {
            return Verdict::Refused;
        }
        match socket.recv_from(&mut buf) {
            Ok(_) => return Verdict::Allow,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Verdict::Refused,
            Err(_) => {}
        }
    }
    Verdict::Deny
}

/// ICMP echoes from `ns` to `dst` (`ping`), from `src` when given: allowed when any of
/// three (a fifth of a second apart, a second's wait) is answered.
pub fn ping(ns: &PrivateNetns, src: Option<IpAddr>, dst: IpAddr) -> Verdict {
    let mut cmd = std::process::Command::new("ping");
    cmd.args(["-c", "3", "-i", "0.2", "-W", "1", "-n", "-q"]);
    if let Some(src) = src {
        cmd.args(["-I", &src.to_string()]);
    }
    cmd.arg(dst.to_string());
    let out = run_in(ns, || cmd.output()).expect("run ping");
    if std::env::var_os("POLICY_TRAFFIC_DEBUG").is_some() {
        eprintln!("ping {dst}: {out:?}");
    }
    if out.status.success() {
        Verdict::Allow
    } else {
        Verdict::Deny
    }
}
