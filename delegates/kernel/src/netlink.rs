//! The rtnetlink socket and its request plumbing: single requests with ACK,
//! and dumps.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Receive buffer asked for, so that large dumps are not dropped (the kernel caps it at net.core.rmem_max).
const RCVBUF: usize = 1 << 20;
/// `NLMSGERR_ATTR_MSG`: the human-readable extended-ack message.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

/// A synchronous rtnetlink (`NETLINK_ROUTE`) socket.
///
/// A netlink socket stays bound to the network namespace it was created in,
/// so a handle from [`Netlink::in_netns`] configures that namespace from any
/// thread, without the thread staying in it.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

/// One decoded message from a reply datagram.
enum Reply {
    Message(RouteNetlinkMessage),
    /// End of a dump; carries the dump's error, if any.
    Done(Option<(i32, Option<String>)>),
    /// `NLMSG_ERROR`: `None` is a positive ACK.
    Ack(Option<(i32, Option<String>)>),
}

impl Netlink {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn new() -> Result<Self> {
        let op = "open rtnetlink socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(op, e))?;
        socket.bind_auto().map_err(|e| Error::io(op, e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io(op, e))?;
        // Best effort: these only improve error messages and large replies.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_rx_buf_sz(RCVBUF);
        Ok(Netlink { socket, seq: 0 })
    }

    /// Opens a socket in `ns`: enters it on the calling thread just long
    /// enough to create the socket.
    pub fn in_netns(ns: &Netns) -> Result<Self> {
        let _guard = ns.enter()?;
        Self::new()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Sends one request with `NLM_F_ACK` and returns the messages the
    /// kernel sent before acknowledging it (e.g. the reply to a GET).
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK | flags, op)
    }

    /// Sends a request that must succeed without a reply body.
    pub(crate) fn execute(&mut self, msg: RouteNetlinkMessage, flags: u16, op: &str) -> Result<()> {
        self.request(msg, flags, op).map(drop)
    }

    /// Sends a dump request and collects every message until `NLMSG_DONE`
    /// (the kernel splits dumps over several datagrams).
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_DUMP, op)
    }

    /// Sends one message and collects the replies to it until the kernel
    /// closes the exchange: an ACK for a request, `NLMSG_DONE` for a dump
    /// (a positive ACK only follows DONE, so either ends it).
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.next_seq();
        let buf = encode(msg, flags, seq);
        self.send(&buf, op)?;
        let mut out = Vec::new();
        loop {
            for (got, reply) in self.recv(op)? {
                if got != seq {
                    continue;
                }
                match reply {
                    Reply::Message(m) => out.push(m),
                    Reply::Ack(None) | Reply::Done(None) => return Ok(out),
                    Reply::Ack(Some((errno, msg))) | Reply::Done(Some((errno, msg))) => {
                        return Err(netlink_error(op, errno, msg))
                    }
                }
            }
        }
    }

    fn send(&mut self, buf: &[u8], op: &str) -> Result<()> {
        loop {
            match self.socket.send(buf, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("{op}: send"), e)),
            }
        }
    }

    /// Receives one datagram (sized with MSG_PEEK|MSG_TRUNC, so no message is
    /// ever truncated) and decodes every message in it.
    fn recv(&mut self, op: &str) -> Result<Vec<(u32, Reply)>> {
        let buf = loop {
            match self.socket.recv_from_full() {
                Ok((buf, _)) => break buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("{op}: receive"), e)),
            }
        };
        decode_datagram(&buf, op)
    }
}

fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

fn decode_datagram(buf: &[u8], op: &str) -> Result<Vec<(u32, Reply)>> {
    let decode_err = |msg: String| Error::Decode {
        op: op.to_owned(),
        msg,
    };
    let mut out = Vec::new();
    let mut offset = 0;
    while buf.len() - offset >= NLMSG_HDRLEN {
        let bytes = &buf[offset..];
        let nl = NetlinkBuffer::new_checked(bytes).map_err(|e| decode_err(e.to_string()))?;
        let len = nl.length() as usize;
        let (seq, mtype, flags) = (nl.sequence_number(), nl.message_type(), nl.flags());
        let message = &bytes[..len];
        offset += (len + 3) & !3;
        if mtype == NLMSG_NOOP {
            continue;
        }
        let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(message);
        let reply = match parsed {
            Ok(m) => match m.payload {
                NetlinkPayload::InnerMessage(inner) => Reply::Message(inner),
                NetlinkPayload::Error(e) => {
                    Reply::Ack(e.code.map(|c| (-c.get(), extack_message(&e.header, flags))))
                }
                NetlinkPayload::Done(d) => Reply::Done((d.code < 0).then(|| (-d.code, None))),
                _ => continue,
            },
            Err(e) if mtype == NLMSG_ERROR || mtype == NLMSG_DONE => {
                return Err(decode_err(e.to_string()))
            }
            Err(e) => {
                // One odd object (an attribute this library cannot parse)
                // must not make a whole dump fail.
                tracing::warn!("{op}: skipping undecodable netlink message: {e}");
                continue;
            }
        };
        out.push((seq, reply));
    }
    Ok(out)
}

/// Extracts `NLMSGERR_ATTR_MSG` from an error's payload: the echoed request
/// (only its header when the kernel capped it) followed by TLVs.
fn extack_message(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        NetlinkBuffer::new(payload).length() as usize
    };
    let tlvs = payload.get((echoed + 3) & !3..)?;
    NlasIterator::new(tlvs)
        .filter_map(|nla| nla.ok())
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            String::from_utf8_lossy(nla.value())
                .trim_end_matches('\0')
                .to_owned()
        })
}

fn netlink_error(op: &str, errno: i32, msg: Option<String>) -> Error {
    Error::Netlink {
        op: op.to_owned(),
        errno,
        msg,
    }
}
