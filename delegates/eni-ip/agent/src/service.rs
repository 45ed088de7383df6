//! What the socket and the introspection server share: the agent once it has started, the
//! metrics, and the dispatch of one call.

use std::sync::{Arc, OnceLock};

use eni_ip::protocol::{AgentError, Call, ErrorCode, Outcome, Response, PROTOCOL_VERSION};

use crate::agent::Agent;
use crate::metrics::Metrics;

/// The agent's name and version on the wire.
pub const SERVER_NAME: &str = concat!("eni-ipamd/", env!("CARGO_PKG_VERSION"));

/// The agent behind the servers; calls before it has started are answered `NotReady`.
#[derive(Debug, Default)]
pub struct Service {
    agent: OnceLock<Arc<Agent>>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

impl Service {
    /// A service with no agent yet.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Service {
            agent: OnceLock::new(),
            metrics,
        }
    }

    /// The agent has started: serve it.
    pub fn set_agent(&self, agent: Arc<Agent>) {
        let _ = self.agent.set(agent);
    }

    /// The agent, once started.
    pub fn agent(&self) -> Option<&Arc<Agent>> {
        self.agent.get()
    }

    /// Performs one call.
    pub async fn call(&self, call: Call) -> Outcome {
        let Some(agent) = self.agent() else {
            if let Call::Status = call {
                return Outcome::Status(eni_ip::protocol::Status {
                    ready: false,
                    available: 0,
                    assigned: 0,
                    total: 0,
                    enis: 0,
                    max_pods: 0,
                });
            }
            return Outcome::Error(AgentError {
                code: ErrorCode::NotReady,
                message: "the agent is still learning the node and restoring its checkpoint".into(),
            });
        };
        let result = match call {
            Call::AddNetwork(add) => agent.add_network(add).await.map(Outcome::Assigned),
            Call::DelNetwork(del) => agent.del_network(del).map(Outcome::Released),
            Call::Gc(gc) => agent.gc(gc).map(Outcome::Collected),
            Call::Status => Ok(Outcome::Status(agent.status())),
            Call::Lookup(lookup) => agent.lookup(lookup).map(Outcome::Found),
        };
        result.unwrap_or_else(Outcome::Error)
    }
}

/// A response carrying this agent's version.
pub fn response(outcome: Outcome) -> Response {
    Response {
        protocol: PROTOCOL_VERSION,
        server: SERVER_NAME.to_string(),
        outcome,
    }
}
