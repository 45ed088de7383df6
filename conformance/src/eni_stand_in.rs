//! A stand-in for the ENI agent (`eni-ipamd`) on a Unix socket: protocol version 1 served
//! from a fixed list of addresses, so the `eni-ip` plugin's datapath, rollback and DEL
//! paths are tested without the agent, the EC2 emulator or their timing. It knows nothing
//! of ENIs beyond what each address says (ENI, device index, route table) and has no
//! cooldown: the pool rules are the real agent's tests. Tests of the plugin against the
//! real agent use `eni-ipamd` itself.
//!
//! It can also answer as an agent of another protocol version, or as one that is not
//! ready, and it records every call, so a test can assert the reason of a `DelNetwork`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eni_ip::protocol::{
    Assigned, AttachmentKey, Call, Collected, Found, Outcome, Released, Request, Response, Status,
    PROTOCOL_VERSION,
};

/// One address the stand-in can hand out, with where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolAddress {
    /// The address.
    pub address: Ipv4Addr,
    /// Its ENI's device index (0: the primary ENI).
    pub device_index: u32,
}

impl PoolAddress {
    /// An address on the ENI of `device_index`.
    pub fn new(address: &str, device_index: u32) -> PoolAddress {
        PoolAddress {
            address: address.parse().expect("an IPv4 address"),
            device_index,
        }
    }

    fn assigned(&self) -> Assigned {
        Assigned {
            address: self.address,
            eni_id: format!("eni-{:017x}", self.device_index),
            eni_mac: format!("02:00:00:00:00:{:02x}", 0x10 + self.device_index),
            device_index: self.device_index,
            // AWS VPC CNI: main for the primary ENI, else device index + 1.
            route_table: if self.device_index == 0 {
                254
            } else {
                self.device_index + 1
            },
            subnet: "10.0.1.0/24".parse().expect("a subnet"),
            vpc_cidrs: vec!["10.0.0.0/16".parse().expect("a CIDR")],
            node_ip: Ipv4Addr::new(10, 0, 1, 4),
            use_external_snat: false,
        }
    }
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// As a ready agent of this protocol version.
    Ready,
    /// As an agent still starting: `NotReady` to every call but STATUS, which says so.
    NotReady,
    /// As an agent of protocol version `n`, whose answers this plugin cannot read.
    Version(u32),
}

#[derive(Debug, Default)]
struct State {
    free: Vec<PoolAddress>,
    held: BTreeMap<AttachmentKey, PoolAddress>,
    calls: Vec<Call>,
    /// How long an `AddNetwork` answer waits after the address is assigned.
    add_delay: Duration,
}

/// A running stand-in; it stops (and its socket goes) when dropped.
pub struct StandInAgent {
    socket: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandInAgent {
    /// Serves `pool` on `socket` as `behaviour` says.
    pub fn start(socket: &Path, pool: Vec<PoolAddress>, behaviour: Behaviour) -> StandInAgent {
        let listener = UnixListener::bind(socket)
            .unwrap_or_else(|e| panic!("bind the stand-in agent on {}: {e}", socket.display()));
        let state = Arc::new(Mutex::new(State {
            free: pool,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // One thread a connection: a delayed answer holds up no other call.
                        let (state, stop) = (state.clone(), stop.clone());
                        std::thread::spawn(move || serve(stream, &state, &stop, behaviour));
                    }
                }
            })
        };
        StandInAgent {
            socket: socket.to_path_buf(),
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The calls served so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("stand-in state").calls.clone()
    }

    /// The addresses held, by key.
    pub fn held(&self) -> BTreeMap<AttachmentKey, Ipv4Addr> {
        let state = self.state.lock().expect("stand-in state");
        state
            .held
            .iter()
            .map(|(k, a)| (k.clone(), a.address))
            .collect()
    }

    /// Makes `AddNetwork` answer `delay` after assigning the address (an agent waiting
    /// on EC2), so a test can kill the plugin while it waits.
    pub fn set_add_delay(&self, delay: Duration) {
        self.state.lock().expect("stand-in state").add_delay = delay;
    }

    /// Forgets every allocation (as an agent that lost them would), keeping the addresses.
    pub fn forget_all(&self) {
        let mut state = self.state.lock().expect("stand-in state");
        let held: Vec<PoolAddress> = std::mem::take(&mut state.held).into_values().collect();
        state.free.extend(held);
    }

    /// Stops serving and removes the socket: the agent is down.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for StandInAgent {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn serve(mut stream: UnixStream, state: &Mutex<State>, stop: &AtomicBool, behaviour: Behaviour) {
    let mut bytes = Vec::new();
    if stream.read_to_end(&mut bytes).is_err() {
        return;
    }
    let Ok(request) = serde_json::from_slice::<Request>(&bytes) else {
        return;
    };
    let is_add = matches!(request.call, Call::AddNetwork(_));
    let mut state = state.lock().expect("stand-in state");
    state.calls.push(request.call.clone());
    let delay = if is_add {
        state.add_delay
    } else {
        Duration::ZERO
    };
    let outcome = match behaviour {
        Behaviour::Version(_) => Outcome::Released(Released { address: None }),
        Behaviour::NotReady => match request.call {
            Call::Status => Outcome::Status(status(&state, false)),
            _ => Outcome::Error(eni_ip::protocol::AgentError {
                code: eni_ip::protocol::ErrorCode::NotReady,
                message: "the agent is restoring its checkpoint".into(),
            }),
        },
        Behaviour::Ready => answer(&mut state, request.call),
    };
    drop(state);
    let until = Instant::now() + delay;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let response = Response {
        protocol: match behaviour {
            Behaviour::Version(n) => n,
            _ => PROTOCOL_VERSION,
        },
        server: "eni-ipamd stand-in".into(),
        outcome,
    };
    let _ = stream.write_all(&serde_json::to_vec(&response).expect("a response serializes"));
}

fn status(state: &State, ready: bool) -> Status {
    let (free, held) = (state.free.len() as u32, state.held.len() as u32);
    Status {
        ready,
        available: free,
        assigned: held,
        total: free + held,
        enis: 1,
        max_pods: free + held,
    }
}

fn answer(state: &mut State, call: Call) -> Outcome {
    match call {
        Call::AddNetwork(add) => {
            if let Some(a) = state.held.get(&add.key) {
                return Outcome::Assigned(a.assigned());
            }
            if state.free.is_empty() {
                return Outcome::Error(eni_ip::protocol::AgentError {
                    code: eni_ip::protocol::ErrorCode::NoAvailableAddresses,
                    message: "the stand-in's pool is empty".into(),
                });
            }
            let a = state.free.remove(0);
            let assigned = a.assigned();
            state.held.insert(add.key, a);
            Outcome::Assigned(assigned)
        }
        Call::DelNetwork(del) => {
            let address = state.held.remove(&del.key).map(|a| {
                let address = a.address;
                state.free.push(a);
                address
            });
            Outcome::Released(Released { address })
        }
        Call::Lookup(lookup) => Outcome::Found(Found {
            assigned: state.held.get(&lookup.key).map(PoolAddress::assigned),
        }),
        Call::Status => Outcome::Status(status(state, true)),
        Call::Gc(gc) => {
            let stale: Vec<AttachmentKey> = state
                .held
                .keys()
                .filter(|k| {
                    k.network == gc.network
                        && !gc
                            .valid
                            .iter()
                            .any(|v| v.container_id == k.container_id && v.ifname == k.ifname)
                })
                .cloned()
                .collect();
            let mut released = Vec::new();
            for key in stale {
                if let Some(a) = state.held.remove(&key) {
                    released.push((key, a.address));
                    state.free.push(a);
                }
            }
            Outcome::Collected(Collected { released })
        }
    }
}
