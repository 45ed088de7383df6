//! The IPAM delegate: the plugin named by `ipam.type`, run with the bridge's own netconf and
//! environment (the spec's rule), through an [`Executor`] so the multi-call binary can run
//! its own IPAM in-process and exec anything else.

use cni::chain::Executor;
use cni::{CniResult, Command, Error, Request};

/// One IPAM plugin, bound to the request it serves.
pub(crate) struct Ipam<'a> {
    exec: &'a dyn Executor,
    plugin_type: &'a str,
    req: &'a Request,
}

impl<'a> Ipam<'a> {
    pub(crate) fn new(exec: &'a dyn Executor, plugin_type: &'a str, req: &'a Request) -> Self {
        Ipam {
            exec,
            plugin_type,
            req,
        }
    }

    fn run(&self, command: Command) -> Result<Option<CniResult>, Error> {
        let inv = self.req.inv.with_command(command);
        self.exec
            .run(self.plugin_type, &inv, self.req.raw_netconf.clone())
            .map_err(|e| e.context(format!("IPAM plugin {} {command}", self.plugin_type)))
    }

    /// ADD: the addresses, routes and DNS the IPAM plugin reserved.
    pub(crate) fn add(&self) -> Result<CniResult, Error> {
        self.run(Command::Add)?.ok_or_else(|| {
            Error::internal(
                format!("IPAM plugin {} ADD", self.plugin_type),
                "the executor returned no result",
            )
        })
    }

    /// DEL, CHECK, STATUS or GC: success or the plugin's error.
    pub(crate) fn call(&self, command: Command) -> Result<(), Error> {
        self.run(command).map(drop)
    }
}
