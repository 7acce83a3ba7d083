//! Invocations and their run records: every run with its tenant, plugin, version, outcome, cost
//! and logs.

use portico_plugin_runtime::PluginError;
use portico_plugin_runtime::input;
use portico_plugin_runtime::runtime::RunReport;

use super::model::{InvokeRequest, InvokeResult, LogLineView, Replay, Run, RunRow, RunSubject};
use super::{prepared, store};
use crate::AppState;
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::types::TenantId;

/// Days a failed run's input is kept for replay, where its install keeps them.
pub const KEPT_INPUT_DAYS: i64 = 7;

/// Records an invocation; returns the record's id. `failed_input`, given only for a run that
/// failed, is what the plugin was given, as `portico plugin run` takes it: the run keeps it (with
/// the install's configuration, never its secrets, and with tracking links and form tokens
/// redacted) for [`KEPT_INPUT_DAYS`] where the install asks for that.
pub async fn record(
    pool: &Pool,
    subject: RunSubject<'_>,
    report: &RunReport,
    error: Option<&PluginError>,
    failed_input: Option<&serde_json::Value>,
) -> Result<String> {
    let run = RunRow {
        id: db::new_id(),
        install_id: subject.install_id.map(str::to_string),
        plugin_id: subject.plugin_id.to_string(),
        version: subject.version.to_string(),
        kind: subject.kind.to_string(),
        outcome: error.map_or("ok", PluginError::code).to_string(),
        message: error.map(|e| e.to_string()),
        duration_us: report.duration_us as i64,
        fuel_used: report.fuel_used.map(|f| f.min(i64::MAX as u64) as i64),
        logs: serde_json::to_string(&report.logs).unwrap_or_else(|_| "[]".into()),
        created_at: db::now_ms(),
    };
    let input = failed_input
        .zip(subject.keep_input_with)
        .map(|(input, config)| {
            let mut input = input.clone();
            redact_credentials(&mut input);
            (input.to_string(), config)
        });
    let kept = input.as_ref().map(|(input, config)| {
        (
            input.as_str(),
            *config,
            run.created_at + KEPT_INPUT_DAYS * DAY_MS,
        )
    });
    store::insert_run(pool, subject.tenant, &run, kept).await?;
    Ok(run.id)
}

const DAY_MS: i64 = 86_400_000;

/// Tracking links (`/t/<token>`) and form tokens open a customer's portal: a kept input holds
/// neither. Links keep their shape (`/t/redacted`), so a theme still renders them.
fn redact_credentials(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if text.contains("/t/") => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find("/t/") {
                out.push_str(&rest[..at + 3]);
                rest = &rest[at + 3..];
                let token_end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .unwrap_or(rest.len());
                if token_end > 0 {
                    out.push_str("redacted");
                }
                rest = &rest[token_end..];
            }
            out.push_str(rest);
            *text = out;
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_credentials),
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if name == "csrf_token" {
                    *field = serde_json::Value::String(String::new());
                } else {
                    redact_credentials(field);
                }
            }
        }
        _ => {}
    }
}

/// Forgets kept inputs whose time is up, in every tenant, once an hour.
pub fn spawn_input_sweeper(pool: Pool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            let sweep = store::forget_expired_inputs(&pool, db::now_ms());
            match db::across_tenants(sweep).await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "expired plugin inputs forgotten"),
                Err(e) => tracing::warn!(error = ?e, "forgetting expired plugin inputs failed"),
            }
        }
    });
}
/// A failed run with the input it kept, for `portico plugin replay`; not found when the run
/// kept none (its install does not keep inputs, it succeeded, or its time is up).
pub async fn replay(state: &AppState, tenant: &TenantId, run: &str) -> Result<Replay> {
    let Some((row, input, config, expires_at)) =
        store::replay_of(&state.db.pool, tenant, run, db::now_ms()).await?
    else {
        return Err(Error::NotFound(
            "no run with a kept input: the run succeeded, its install does not keep failed \
             inputs (keep_failed_inputs), or its input has expired",
        ));
    };
    let parse = |text: &str| {
        serde_json::from_str(text).map_err(|e| Error::Internal(anyhow::anyhow!("kept input: {e}")))
    };
    Ok(Replay {
        input: parse(&input)?,
        config: parse(&config)?,
        expires_at: db::timestamp(expires_at),
        run: Run::from(row),
    })
}

/// Runs one of the tenant's installs once on the given input, under its production limits, and
/// records the run. A plugin's failure is a result here, not an error.
pub async fn invoke(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
    request: InvokeRequest,
) -> Result<InvokeResult> {
    let runnable = prepared::runnable(state, tenant, id).await?;
    let key = request.idempotency_key.unwrap_or_else(db::new_id);
    let input = request.input;
    let (result, report) = input::execute(
        &state.plugins.runtime,
        &runnable.plugin,
        runnable.call(&key),
        input.clone(),
    )
    .await
    .map_err(|e| Error::invalid("invalid_input", e.0))?;
    let subject = runnable.subject(tenant);
    let failure = result.as_ref().err();
    let failed_input = failure.map(|_| &input);
    let run_id = record(&state.db.pool, subject, &report, failure, failed_input).await?;
    let (outcome, message, output) = match result {
        Ok(output) => ("ok".to_string(), None, Some(output)),
        Err(e) => (e.code().to_string(), Some(e.to_string()), None),
    };
    Ok(InvokeResult {
        outcome,
        message,
        output,
        run_id,
        duration_us: report.duration_us,
        fuel_used: report.fuel_used,
        logs: report.logs.iter().map(LogLineView::from).collect(),
    })
}

/// What a channel made of one message.
#[derive(Debug)]
pub enum ChannelOutcome {
    Delivered {
        provider_id: Option<String>,
        detail: Option<String>,
    },
    /// `permanent` failures (`invalid_recipient`, `rejected`, `configuration`) are not retried.
    Failed {
        permanent: bool,
        code: String,
        message: String,
    },
}

/// Hands one message (the channel input as JSON) to a channel install and records the run. The
/// same `idempotency_key` on a retry lets the provider deduplicate.
pub async fn deliver(
    state: &AppState,
    tenant: &TenantId,
    install_id: &str,
    message: serde_json::Value,
    idempotency_key: &str,
) -> Result<ChannelOutcome> {
    let runnable = prepared::runnable_cached(state, tenant, install_id).await?;
    if runnable.kind != portico_plugin_runtime::PluginKind::Channel {
        return Err(Error::invalid(
            "not_a_channel",
            "this install is not a notification channel",
        ));
    }
    let (result, report) = input::execute(
        &state.plugins.runtime,
        &runnable.plugin,
        runnable.call(idempotency_key),
        message.clone(),
    )
    .await
    .map_err(|e| Error::invalid("invalid_input", e.0))?;
    let subject = runnable.subject(tenant);
    // The message may be out: failing to keep the run record must not make it a failure that
    // sends the message again.
    // A channel's own refusal (`delivery_error`) is a failure worth replaying too.
    let failure = result.as_ref().err();
    let refused = matches!(&result, Ok(output) if output.get("delivery_error").is_some());
    let failed_input = (failure.is_some() || refused).then_some(&message);
    if let Err(e) = record(&state.db.pool, subject, &report, failure, failed_input).await {
        tracing::warn!(install = %install_id, error = ?e, "recording a channel run failed");
    }
    Ok(match result {
        Ok(output) => {
            let text = |v: &serde_json::Value, key: &str| v[key].as_str().map(str::to_string);
            if let Some(failure) = output.get("delivery_error") {
                let code = text(failure, "kind").unwrap_or_default();
                ChannelOutcome::Failed {
                    permanent: code != "temporary",
                    message: text(failure, "message").unwrap_or_default(),
                    code,
                }
            } else {
                let done = &output["delivery"];
                ChannelOutcome::Delivered {
                    provider_id: text(done, "provider_id"),
                    detail: text(done, "detail"),
                }
            }
        }
        // A plugin that traps or runs out of time may do better next time.
        Err(e) => ChannelOutcome::Failed {
            permanent: false,
            code: e.code().to_string(),
            message: e.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_inputs_hold_no_tracking_tokens_or_form_tokens() {
        let mut input = serde_json::json!({
            "text": "Follow it: https://p.example/t/AbC-12_x9, or /t/Q2 (twice).",
            "links": {"page": "/t/AbC-12_x9", "booking": "/t/AbC-12_x9/booking"},
            "csrf_token": "secret-form-token",
            "list": ["/t/zz"],
        });
        redact_credentials(&mut input);
        assert_eq!(
            input,
            serde_json::json!({
                "text": "Follow it: https://p.example/t/redacted, or /t/redacted (twice).",
                "links": {"page": "/t/redacted", "booking": "/t/redacted/booking"},
                "csrf_token": "",
                "list": ["/t/redacted"],
            })
        );
    }
}
