//! Running a conflist plugin by plugin, as libcni does: ADD in order with each plugin's
//! result as the next one's `prevResult`, DEL in reverse and CHECK with the cached result,
//! `runtimeConfig` filtered by each plugin's `capabilities`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::invocation::{Command, Invocation};
use crate::invoke::{exec_plugin, find_in_path};
use crate::netconf::{ConfList, NetConf};
use crate::result::CniResult;
use crate::version::Version;

/// Runs one plugin of a chain: exec'd from `CNI_PATH`, or in-process for our own plugins.
/// Typed both ways, so an in-process call never goes through text; an exec turns the
/// netconf into stdin and stdout into a result itself.
pub trait Executor {
    /// Runs plugin `plugin_type` for `inv` with netconf `config` (a JSON object). Returns
    /// an ADD's result as the caller reads it (parsed from the version it is labelled
    /// with), `None` for the other verbs.
    fn run(
        &self,
        plugin_type: &str,
        inv: &Invocation,
        config: Map<String, Value>,
    ) -> Result<Option<CniResult>, Error>;
}

/// Execs every plugin from `CNI_PATH`, as the spec describes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecFromPath;

impl Executor for ExecFromPath {
    fn run(
        &self,
        plugin_type: &str,
        inv: &Invocation,
        config: Map<String, Value>,
    ) -> Result<Option<CniResult>, Error> {
        exec_plugin(&find_in_path(plugin_type, &inv.path)?, inv, &config)
    }
}

/// One entry of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container's ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface name in the container.
    pub ifname: String,
}

/// The netconf key carrying the valid attachments on GC.
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";

/// The attachments a GC must keep, from `netconf`. A GC without the list is refused (code
/// 7): every attachment would look stale.
pub fn valid_attachments(netconf: &NetConf) -> Result<Vec<Attachment>, Error> {
    match netconf.extra.get(VALID_ATTACHMENTS) {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Error::invalid_config(
                VALID_ATTACHMENTS,
                v,
                format!("not a list of attachments: {e}"),
            )
        }),
        None => Err(Error::invalid_config(
            VALID_ATTACHMENTS,
            "",
            "GC needs the list of valid attachments",
        )),
    }
}

/// A conflist bound to the version it runs at.
#[derive(Debug, Clone)]
pub struct Chain<'a> {
    list: &'a ConfList,
    version: Version,
}

impl<'a> Chain<'a> {
    /// Binds `list` to its negotiated version (code 1 if we speak none of its versions).
    pub fn new(list: &'a ConfList) -> Result<Self, Error> {
        Ok(Chain {
            list,
            version: list.version(&Version::ALL)?,
        })
    }

    /// The version every plugin of the chain is called with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The netconf plugin `index` receives: the list's `name` and `cniVersion`, the
    /// capability-filtered `runtimeConfig`, and `prevResult` when given.
    pub fn plugin_config(
        &self,
        index: usize,
        prev: Option<&CniResult>,
        runtime: &Map<String, Value>,
        extra: &[(&str, Value)],
    ) -> Result<Map<String, Value>, Error> {
        let mut conf = self.list.plugins[index].clone();
        conf.insert("name".into(), Value::String(self.list.name.clone()));
        conf.insert("cniVersion".into(), Value::String(self.version.to_string()));
        let wanted: Map<String, Value> = conf
            .get("capabilities")
            .and_then(Value::as_object)
            .map(|caps| {
                caps.iter()
                    .filter(|(_, on)| **on == Value::Bool(true))
                    .filter_map(|(k, _)| Some((k.clone(), runtime.get(k)?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        if !wanted.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(wanted));
        }
        if let Some(prev) = prev {
            conf.insert("prevResult".into(), prev.to_value(self.version)?);
        }
        for (k, v) in extra {
            conf.insert((*k).to_string(), v.clone());
        }
        Ok(conf)
    }

    fn plugin_type(&self, index: usize) -> &str {
        self.list.plugins[index]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn run(
        &self,
        index: usize,
        inv: &Invocation,
        config: Map<String, Value>,
        exec: &dyn Executor,
    ) -> Result<Option<CniResult>, Error> {
        let t = self.plugin_type(index);
        exec.run(t, inv, config).map_err(|e| {
            e.context(format!(
                "plugin {t} ({} of {})",
                index + 1,
                self.list.plugins.len()
            ))
        })
    }

    /// ADD every plugin in order; the last result, in the chain's version, is the list's.
    pub fn add(
        &self,
        inv: &Invocation,
        runtime: &Map<String, Value>,
        exec: &dyn Executor,
    ) -> Result<CniResult, Error> {
        let inv = inv.with_command(Command::Add);
        let mut prev: Option<CniResult> = None;
        for i in 0..self.list.plugins.len() {
            let config = self.plugin_config(i, prev.as_ref(), runtime, &[])?;
            let result = self.run(i, &inv, config, exec)?.ok_or_else(|| {
                Error::internal(
                    format!("plugin {} ADD", self.plugin_type(i)),
                    "the executor returned no result",
                )
            })?;
            prev = Some(result);
        }
        prev.ok_or_else(|| Error::internal("conflist ADD", "no plugins"))
    }

    /// DEL every plugin in reverse, with the cached result as `prevResult` from 0.4.0 on.
    /// Every plugin is called even after a failure; the first failure is returned.
    pub fn del(
        &self,
        inv: &Invocation,
        runtime: &Map<String, Value>,
        cached: Option<&CniResult>,
        exec: &dyn Executor,
    ) -> Result<(), Error> {
        let inv = inv.with_command(Command::Del);
        let prev = cached.filter(|_| self.version.has_check());
        let mut first_error = None;
        for i in (0..self.list.plugins.len()).rev() {
            let outcome = self
                .plugin_config(i, prev, runtime, &[])
                .and_then(|config| self.run(i, &inv, config, exec));
            if let Err(e) = outcome {
                tracing::warn!("DEL went on past a failure: {e}");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// CHECK every plugin in order against the cached result (0.4.0 and later).
    pub fn check(
        &self,
        inv: &Invocation,
        runtime: &Map<String, Value>,
        cached: &CniResult,
        exec: &dyn Executor,
    ) -> Result<(), Error> {
        if !self.version.has_check() {
            return Err(
                Error::incompatible_version(self.version.as_str(), &Version::ALL[4..])
                    .context("CHECK"),
            );
        }
        if self.list.disable_check {
            return Ok(());
        }
        let inv = inv.with_command(Command::Check);
        for i in 0..self.list.plugins.len() {
            let config = self.plugin_config(i, Some(cached), runtime, &[])?;
            self.run(i, &inv, config, exec)?;
        }
        Ok(())
    }

    /// STATUS of every plugin (1.1.0). A list of an older version has no STATUS: as in
    /// libcni, it is reported available without calling its plugins.
    pub fn status(&self, inv: &Invocation, exec: &dyn Executor) -> Result<(), Error> {
        if !self.version.has_status_and_gc() {
            return Ok(());
        }
        let inv = inv.with_command(Command::Status);
        for i in 0..self.list.plugins.len() {
            let config = self.plugin_config(i, None, &Map::new(), &[])?;
            self.run(i, &inv, config, exec)?;
        }
        Ok(())
    }

    /// GC of every plugin with `cni.dev/valid-attachments` (1.1.0). Every plugin is called;
    /// the first failure is returned. A list of an older version has no GC and, as in
    /// libcni, is skipped.
    pub fn gc(
        &self,
        inv: &Invocation,
        valid: &[Attachment],
        exec: &dyn Executor,
    ) -> Result<(), Error> {
        if self.list.disable_gc || !self.version.has_status_and_gc() {
            return Ok(());
        }
        let inv = inv.with_command(Command::Gc);
        let valid =
            serde_json::to_value(valid).map_err(|e| Error::internal("encode attachments", e))?;
        let mut first_error = None;
        for i in 0..self.list.plugins.len() {
            let outcome = self
                .plugin_config(i, None, &Map::new(), &[(VALID_ATTACHMENTS, valid.clone())])
                .and_then(|config| self.run(i, &inv, config, exec));
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::args::CniArgs;

    /// Records every call and answers ADD with a result naming the plugin.
    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<(String, Command, Value)>>,
        fail: Option<&'static str>,
    }

    impl Executor for Recorder {
        fn run(
            &self,
            t: &str,
            inv: &Invocation,
            config: Map<String, Value>,
        ) -> Result<Option<CniResult>, Error> {
            let conf = Value::Object(config);
            self.calls
                .borrow_mut()
                .push((t.to_string(), inv.command, conf.clone()));
            if self.fail == Some(t) {
                return Err(Error::new(crate::ErrorCode(7), format!("{t} refused"), ""));
            }
            if inv.command != Command::Add {
                return Ok(None);
            }
            let mut result = match conf.get("prevResult") {
                Some(prev) => CniResult::from_value(prev, Version::V1_0_0).unwrap(),
                None => CniResult::default(),
            };
            result.interfaces.push(crate::Interface {
                name: t.to_string(),
                ..Default::default()
            });
            Ok(Some(result))
        }
    }

    fn list() -> ConfList {
        ConfList::parse(
            br#"{"cniVersion":"1.0.0","name":"chain","plugins":[
                {"type":"a","capabilities":{"portMappings":true,"mac":false}},
                {"type":"b","keep":{"me":1}}]}"#,
        )
        .unwrap()
    }

    fn inv() -> Invocation {
        Invocation {
            command: Command::Add,
            container_id: "c1".into(),
            netns: None,
            ifname: "eth0".into(),
            args: CniArgs::default(),
            path: vec![],
        }
    }

    #[test]
    fn add_threads_prev_result_and_filters_runtime_config() {
        let list = list();
        let chain = Chain::new(&list).unwrap();
        let rec = Recorder::default();
        let runtime: Map<String, Value> =
            serde_json::from_str(r#"{"portMappings":[{"hostPort":80}],"mac":"x","bandwidth":{}}"#)
                .unwrap();
        let result = chain.add(&inv(), &runtime, &rec).unwrap();
        let names: Vec<&str> = result.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let calls = rec.calls.borrow();
        assert_eq!(
            calls[0].2["runtimeConfig"],
            serde_json::json!({"portMappings":[{"hostPort":80}]})
        );
        assert_eq!(calls[0].2["name"], "chain");
        assert!(calls[0].2.get("prevResult").is_none());
        assert!(calls[1].2.get("runtimeConfig").is_none());
        assert_eq!(calls[1].2["prevResult"]["interfaces"][0]["name"], "a");
        assert_eq!(calls[1].2["keep"], serde_json::json!({"me":1}));
    }

    #[test]
    fn del_runs_in_reverse_past_failures() {
        let list = list();
        let chain = Chain::new(&list).unwrap();
        let rec = Recorder {
            fail: Some("b"),
            ..Default::default()
        };
        let cached = CniResult::default();
        let e = chain
            .del(&inv(), &Map::new(), Some(&cached), &rec)
            .unwrap_err();
        assert!(e.msg.contains("plugin b (2 of 2)"), "{e}");
        let order: Vec<(String, Command)> = rec
            .calls
            .borrow()
            .iter()
            .map(|(t, c, _)| (t.clone(), *c))
            .collect();
        assert_eq!(
            order,
            [("b".into(), Command::Del), ("a".into(), Command::Del)]
        );
        assert!(rec.calls.borrow()[1].2.get("prevResult").is_some());
    }

    #[test]
    fn check_needs_0_4_0_and_gc_passes_attachments() {
        let mut old = list();
        old.cni_version = "0.3.1".into();
        let chain = Chain::new(&old).unwrap();
        let e = chain.check(
            &inv(),
            &Map::new(),
            &CniResult::default(),
            &Recorder::default(),
        );
        assert_eq!(e.unwrap_err().code, crate::ErrorCode::INCOMPATIBLE_VERSION);

        // Before 1.1.0 there is no GC: nothing is called, as libcni does.
        let rec = Recorder::default();
        chain.gc(&inv(), &[], &rec).unwrap();
        assert!(rec.calls.borrow().is_empty());

        let mut list = list();
        list.cni_version = "1.1.0".into();
        let chain = Chain::new(&list).unwrap();
        let rec = Recorder::default();
        let valid = [Attachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        }];
        chain.gc(&inv(), &valid, &rec).unwrap();
        let calls = rec.calls.borrow();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].2[VALID_ATTACHMENTS],
            serde_json::json!([{"containerID":"c1","ifname":"eth0"}])
        );
    }
}
