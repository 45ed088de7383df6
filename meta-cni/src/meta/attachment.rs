//! One attachment of a pod to a network: everything its delegates need, fixed at ADD time
//! and kept in the cache, so DEL and CHECK run exactly what ADD ran.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use cni::chain::{self, Chain};
use cni::Invocation;
use cni::{CniArgs, CniResult, Command, ConfList, Error, Request, Version};

use super::devices::Device;
use super::error::AttachmentError;
use crate::delegates::Delegates;

/// A delegate list's ADD result and the version it speaks; in the cache in that version's
/// wire form, typed everywhere else.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListResult {
    /// The result (default routes moved, once ADD is done).
    pub(crate) result: CniResult,
    /// The version the list ran at.
    pub(crate) version: Version,
}

impl Serialize for ListResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.result
            .to_value(self.version)
            .map_err(|e| serde::ser::Error::custom(e.msg))?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ListResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (result, version) = CniResult::from_labelled(Value::deserialize(d)?)
            .map_err(|e| serde::de::Error::custom(format!("{}: {}", e.msg, e.details)))?;
        Ok(ListResult { result, version })
    }
}

/// An attachment as planned and cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Attachment {
    /// The network's name (`<namespace>/<nad>` for a NAD).
    pub(crate) network: String,
    /// The interface name in the pod.
    pub(crate) ifname: String,
    /// Whether this is the cluster network (the first attachment).
    pub(crate) cluster: bool,
    /// The delegates exactly as run (a single plugin is a one-plugin list), `cni-args`
    /// merged in.
    pub(crate) conf: ConfList,
    /// The runtime config for this attachment: the runtime's, with the attachment's own
    /// `ips`, `mac`, `portMappings`, `bandwidth`, `infinibandGUID` and `deviceID` over it.
    #[serde(rename = "runtimeConfig")]
    pub(crate) runtime_config: Map<String, Value>,
    /// `CNI_ARGS` for the delegates.
    #[serde(rename = "cniArgs")]
    pub(crate) cni_args: CniArgs,
    /// `default-route`: gateways this attachment's interface should hold the default route
    /// through.
    #[serde(
        rename = "defaultRoute",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) default_route: Vec<IpAddr>,
    /// The delegates' ADD result once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<ListResult>,
    /// The device it was given (a NAD's `resourceName`, a selection's `deviceID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<Device>,
}

impl Attachment {
    /// Gives this attachment `device`, as Multus does: `deviceID` and `pciBusID` in every
    /// plugin's netconf (host-device and SR-IOV read them there), and the `deviceID` and
    /// `CNIDeviceInfoFile` capabilities in the runtime config.
    pub(crate) fn give_device(&mut self, device: Device) {
        for plugin in &mut self.conf.plugins {
            plugin.insert("deviceID".into(), device.id.clone().into());
            plugin.insert("pciBusID".into(), device.id.clone().into());
        }
        self.runtime_config
            .insert("deviceID".into(), device.id.clone().into());
        self.runtime_config.insert(
            "CNIDeviceInfoFile".into(),
            device.cni_info_file.display().to_string().into(),
        );
        self.device = Some(device);
    }

    /// The span of one verb on this attachment: every log line of its delegates is in it.
    fn span(&self, verb: Command) -> tracing::Span {
        tracing::info_span!(
            "attachment",
            %verb,
            network = %self.network,
            ifname = %self.ifname
        )
    }

    fn invocation(&self, req: &Request, delegates: &Delegates) -> Invocation {
        Invocation {
            command: req.inv.command,
            container_id: req.inv.container_id.clone(),
            netns: req.inv.netns.clone(),
            ifname: self.ifname.clone(),
            args: self.cni_args.clone(),
            path: delegates.path().to_vec(),
        }
    }

    /// Refuses, before anything is made, an attachment whose delegates cannot run: a
    /// `cniVersion` we speak none of, or a plugin or IPAM `type` that the delegates' path does
    /// not hold. An ADD that failed on these would have made nothing for DEL to undo.
    pub(crate) fn check_runnable(&self, delegates: &Delegates) -> Result<(), AttachmentError> {
        let context = self.context(Command::Add);
        Chain::new(&self.conf).map_err(&context)?;
        match delegates.missing(&self.conf).into_iter().next() {
            Some((_, _, e)) => Err(context(e)),
            None => Ok(()),
        }
    }

    /// Whether every delegate of this attachment is a plugin of this binary, run in-process:
    /// then its DEL is known to take a missing interface as already deleted.
    pub(crate) fn is_bundled(&self, delegates: &Delegates) -> bool {
        self.conf.plugins.iter().all(|p| {
            p.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| delegates.is_bundled(t))
        })
    }

    /// The ADD result, once the delegates' ADD succeeded.
    pub(crate) fn cached_result(&self) -> Option<&CniResult> {
        self.result.as_ref().map(|r| &r.result)
    }

    /// A delegate's failure during `verb`, naming this attachment; its code is kept.
    fn context(&self, verb: Command) -> impl Fn(Error) -> AttachmentError + '_ {
        move |source| AttachmentError::Delegate {
            network: self.network.clone(),
            ifname: self.ifname.clone(),
            verb,
            source: Box::new(source),
        }
    }

    /// ADD through every delegate of the network; the result, in the list's version, is
    /// kept in the attachment too.
    pub(crate) fn add(
        &mut self,
        req: &Request,
        delegates: &Delegates,
    ) -> Result<CniResult, AttachmentError> {
        let _span = self.span(Command::Add).entered();
        let chain = Chain::new(&self.conf).map_err(self.context(Command::Add))?;
        let version = chain.version();
        if let Some(device) = &self.device {
            device.prepare();
        }
        let result = chain
            .add(
                &self.invocation(req, delegates),
                &self.runtime_config,
                delegates.executor(),
            )
            .map_err(self.context(Command::Add))?;
        self.result = Some(ListResult {
            result: result.clone(),
            version,
        });
        if let Some(device) = &mut self.device {
            device.read_back();
        }
        Ok(result)
    }

    /// DEL through every delegate, in reverse, with the cached result.
    pub(crate) fn del(&self, req: &Request, delegates: &Delegates) -> Result<(), AttachmentError> {
        let _span = self.span(Command::Del).entered();
        let chain = Chain::new(&self.conf).map_err(self.context(Command::Del))?;
        let inv = self.invocation(req, delegates);
        chain
            .del(
                &inv,
                &self.runtime_config,
                self.cached_result(),
                delegates.executor(),
            )
            .map_err(self.context(Command::Del))?;
        // Only once the delegates let the device go: a DEL retried finds the file again.
        if let Some(device) = &self.device {
            device
                .remove_info()
                .map_err(|source| AttachmentError::DeviceInfoFile {
                    network: self.network.clone(),
                    ifname: self.ifname.clone(),
                    file: device.cni_info_file.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// CHECK every delegate against the cached result; no result is a failure.
    pub(crate) fn check(
        &self,
        req: &Request,
        delegates: &Delegates,
    ) -> Result<(), AttachmentError> {
        let _span = self.span(Command::Check).entered();
        let chain = Chain::new(&self.conf).map_err(self.context(Command::Check))?;
        let cached = self
            .cached_result()
            .ok_or_else(|| AttachmentError::NoCachedResult {
                network: self.network.clone(),
                ifname: self.ifname.clone(),
            })?;
        chain
            .check(
                &self.invocation(req, delegates),
                &self.runtime_config,
                cached,
                delegates.executor(),
            )
            .map_err(self.context(Command::Check))
    }

    /// STATUS of every delegate.
    pub(crate) fn status(
        &self,
        req: &Request,
        delegates: &Delegates,
    ) -> Result<(), AttachmentError> {
        let chain = Chain::new(&self.conf).map_err(self.context(Command::Status))?;
        chain
            .status(&self.invocation(req, delegates), delegates.executor())
            .map_err(self.context(Command::Status))
    }

    /// GC of every delegate, keeping `valid` (delegate-level attachments).
    pub(crate) fn gc(
        &self,
        req: &Request,
        delegates: &Delegates,
        valid: &[chain::Attachment],
    ) -> Result<(), AttachmentError> {
        let chain = Chain::new(&self.conf).map_err(self.context(Command::Gc))?;
        chain
            .gc(
                &self.invocation(req, delegates),
                valid,
                delegates.executor(),
            )
            .map_err(self.context(Command::Gc))
    }
}
