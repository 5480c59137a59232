//! Running what the backend asks: a check request's tokens, allow list, assets,
//! environment and command, then its hooks; the result is queued as Sensu's event.

use crate::metrics::inc;
use crate::queue::QueueError;
use crate::{allow_list, check, Agent};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use ward_types::agent::CheckRequest;

impl Agent {
    /// The check's runtime assets, installed: their definitions come with the request;
    /// the build is chosen by this agent's entity.
    async fn check_assets(
        &self,
        req: &CheckRequest,
    ) -> Result<Vec<ward_assets::Installed>, String> {
        let names: Vec<&str> = req
            .check
            .config
            .get("runtime_assets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.install_assets(req, &names).await
    }

    /// The assets `names` (defined in the request), installed.
    async fn install_assets(
        &self,
        req: &CheckRequest,
        names: &[&str],
    ) -> Result<Vec<ward_assets::Installed>, String> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        if self.cfg.disable_assets {
            return Err(format!(
                "runtime assets are disabled on this agent (disable-assets), and this needs {}",
                names.join(", ")
            ));
        }
        let cache = self
            .assets
            .as_ref()
            .map_err(|e| format!("runtime assets: {e}"))?;
        let mut defs = Vec::with_capacity(names.len());
        for name in names {
            let def = req
                .assets
                .iter()
                .find(|a| a.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    format!(
                        "asset {name:?}: no such asset in namespace {:?}",
                        req.check.namespace
                    )
                })?;
            defs.push(ward_assets::Asset::from_spec(name, def));
        }
        let view = check::entity_view(&self.entity());
        cache.prepare(&defs, &view).await.map_err(|e| e.to_string())
    }

    /// Runs the hooks `names` after a check (Sensu's `check.hooks`): each HookConfig from
    /// the request with its assets, `timeout` (60 s when 0), `stdin` (the event so far),
    /// output cut at [`check::HOOK_OUTPUT`]. A hook the namespace does not have, or whose
    /// assets fail, is reported with status 2 or 3 and why, not run.
    async fn run_hooks(&self, req: &CheckRequest, names: &[String], event: &Value) -> Vec<Value> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let Some(def) = req
                .hooks
                .iter()
                .find(|h| h.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            else {
                out.push(json!({
                    "metadata": {"name": name, "namespace": req.check.namespace},
                    "command": "", "timeout": 0, "stdin": false, "issued": req.issued,
                    "executed": check::unix_now(), "duration": 0.0, "status": 2,
                    "output": format!("hook {name}: missing hook config (no HookConfig {name:?} in namespace {:?})", req.check.namespace),
                }));
                continue;
            };
            let command = def.get("command").and_then(Value::as_str).unwrap_or("");
            let timeout = def
                .get("timeout")
                .and_then(Value::as_u64)
                .filter(|t| *t > 0)
                .unwrap_or(60);
            let stdin = (def.get("stdin").and_then(Value::as_bool) == Some(true))
                .then(|| serde_json::to_vec(event).unwrap_or_default());
            let names: Vec<&str> = def
                .get("runtime_assets")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // As for checks: the allow list, then the assets, then the executable's hash.
            let list = self.cfg.allow_list.as_ref();
            let result = 'run: {
                let admitted = match allow_list::admit(
                    list,
                    allow_list::Kind::Hook,
                    command,
                    def.get("metadata"),
                ) {
                    Ok(a) => a,
                    Err(denied) => break 'run denied,
                };
                match self.install_assets(req, &names).await {
                    Ok(installed) => {
                        let env = check::environment(&installed, &[], &serde_json::Map::new());
                        if let Err(denied) = admitted.verify(command, env.as_deref()).await {
                            break 'run denied;
                        }
                        check::execute(
                            command,
                            Duration::from_secs(timeout),
                            check::HOOK_OUTPUT,
                            stdin,
                            env,
                        )
                        .await
                    }
                    Err(why) => check::not_run(&format!("hook {name}: {why}")),
                }
            };
            let mut h = def.clone();
            for (k, v) in [
                ("issued", json!(req.issued)),
                ("executed", json!(result.executed)),
                ("duration", json!(result.duration)),
                ("status", json!(result.status)),
                ("output", json!(result.output)),
            ] {
                h[k] = v;
            }
            out.push(h);
        }
        out
    }

    /// Starts a requested check in a task of its own; its result is queued.
    pub(crate) fn start_check(self: &Arc<Self>, req: CheckRequest) {
        // As Sensu's agent (`checkKey`): a proxy request is its own check.
        let mut key = format!("{}/{}", req.check.namespace, req.check.name);
        if let Some(p) = req
            .check
            .config
            .get("proxy_entity_name")
            .and_then(|v| v.as_str())
            .filter(|p| !p.is_empty())
        {
            key = format!("{key}/{p}");
        }
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(key.clone()) {
                tracing::warn!(check = %key, "the check is still running from an earlier request; this request is skipped");
                return;
            }
        }
        let agent = self.clone();
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        while checks.try_join_next().is_some() {}
        checks.spawn(async move {
            let mut req = req;
            // Sensu's order: tokens, then the allow list, then assets, then the environment
            // (and the allow list's sha512, on the PATH the command will have).
            let tokens = substitute_tokens(&mut req, &agent.entity());
            let c = &req.check;
            tracing::debug!(check = %key, command = %c.command, "running a check");
            let stdin = c.stdin.then(|| {
                serde_json::to_vec(&json!({"entity": agent.entity(), "check": c}))
                    .unwrap_or_default()
            });
            let result = 'run: {
                if let Err(e) = tokens {
                    break 'run check::not_run(&format!(
                        "error while substituting check tokens: {e}"
                    ));
                }
                if let Some(e) = &req.secrets.error {
                    break 'run check::not_run(e);
                }
                let admitted = match allow_list::admit(
                    agent.cfg.allow_list.as_ref(),
                    allow_list::Kind::Check,
                    &c.command,
                    c.config.get("metadata"),
                ) {
                    Ok(a) => a,
                    Err(denied) => break 'run denied,
                };
                let installed = match agent.check_assets(&req).await {
                    Ok(i) => i,
                    Err(why) => break 'run check::not_run(&why),
                };
                let no_vars = serde_json::Map::new();
                let config = if admitted.env_vars() {
                    &c.config
                } else {
                    &no_vars
                };
                let env = check::environment(&installed, &req.secrets.vars, config);
                if let Err(denied) = admitted.verify(&c.command, env.as_deref()).await {
                    break 'run denied;
                }
                check::execute(
                    &c.command,
                    Duration::from_secs(c.timeout.into()),
                    usize::try_from(c.max_output_size).unwrap_or(usize::MAX),
                    stdin,
                    env,
                )
                .await
            };
            inc(&agent.metrics.checks);
            agent
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            let hooks = ward_types::agent::hooks_for(c.config.get("check_hooks"), result.status);
            // Parsing metrics and fitting a frame are CPU work on up to 1 MiB of output.
            let entity = agent.entity();
            let for_event = req.clone();
            let mut event = match tokio::task::spawn_blocking(move || {
                check::check_event(&entity, &for_event, &result)
            })
            .await
            {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(check = %key, error = %e, "the check result could not be built");
                    return;
                }
            };
            if !hooks.is_empty() {
                let ran = agent.run_hooks(&req, &hooks, &event).await;
                check::add_hooks(&mut event, ran);
            }
            let status = event.pointer("/check/status").cloned().unwrap_or_default();
            if let Err(QueueError::Full { .. }) = agent.enqueue(&event).await {
                tracing::warn!(check = %key, status = %status, "the check result is dropped: the queue is full");
            }
        });
    }
}

/// Sensu's token substitution (`{{ .labels.url }}`) over a check request, against this
/// agent's entity: every string of the check, of its hooks and of its assets (but an
/// asset's `sha512`).
fn substitute_tokens(
    req: &mut CheckRequest,
    entity: &Value,
) -> Result<(), ward_types::tokens::TokenError> {
    use ward_types::tokens::{entity_data, substitute, substitute_all};
    let data = entity_data(entity);
    let c = &mut req.check;
    if c.command.contains("{{") {
        c.command = substitute(&c.command, &data)?;
    }
    let mut config = Value::Object(std::mem::take(&mut c.config));
    let done = substitute_all(&mut config, &data, &[]);
    if let Value::Object(m) = config {
        c.config = m;
    }
    done?;
    substitute_all(&mut c.output_metric_tags, &data, &[])?;
    for h in &mut req.hooks {
        substitute_all(h, &data, &[])?;
    }
    for a in &mut req.assets {
        substitute_all(a, &data, &["sha512"])?;
    }
    Ok(())
}
