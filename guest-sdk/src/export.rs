//! The bridge between the generated `Guest::run` and the job author's function.
//!
//! It lives in a function rather than in the body of `job!` so that the macro stays a few
//! lines long and the conversion is type-checked once, here, not in every job's crate.

use crate::wit;
use crate::{Context, JobError, Output};

/// Convert the WIT run context, call the job, convert its outcome back.
#[doc(hidden)]
pub fn run_adapter<F>(ctx: wit::RunContext, job: F) -> Result<wit::RunOutput, wit::JobError>
where
    F: FnOnce(Context) -> Result<Output, JobError>,
{
    match job(Context::from_wit(ctx)) {
        Ok(output) => Ok(wit::RunOutput { summary: output.into_summary() }),
        Err(JobError::Retryable(msg)) => Err(wit::JobError::Retryable(msg)),
        Err(JobError::Fatal(msg)) => Err(wit::JobError::Fatal(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::sandcron::job::types::TriggerKind;

    fn wit_ctx(payload: Option<&[u8]>) -> wit::RunContext {
        wit::RunContext {
            job_name: "backup".into(),
            job_version: "abc123".into(),
            run_id: "run-1".into(),
            idempotency_key: "backup@1000".into(),
            scheduled_at_ms: 1_000,
            started_at_ms: 1_250,
            attempt: 2,
            trigger: TriggerKind::CatchUp,
            payload: payload.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn ok_output_becomes_summary() {
        let out = run_adapter(wit_ctx(None), |ctx| {
            assert_eq!(ctx.job_name, "backup");
            assert_eq!(ctx.attempt, 2);
            Ok(Output::new("done"))
        });
        assert_eq!(out.unwrap().summary, "done");
    }

    #[test]
    fn error_kind_is_kept() {
        let retry = run_adapter(wit_ctx(None), |_| Err(JobError::retryable("later")));
        assert!(matches!(retry, Err(wit::JobError::Retryable(m)) if m == "later"));
        let fatal = run_adapter(wit_ctx(None), |_| Err(JobError::fatal("never")));
        assert!(matches!(fatal, Err(wit::JobError::Fatal(m)) if m == "never"));
    }

    #[test]
    fn payload_reaches_the_job() {
        let out = run_adapter(wit_ctx(Some(b"hi")), |ctx| {
            Ok(Output::new(ctx.payload_str().unwrap_or("none")))
        });
        assert_eq!(out.unwrap().summary, "hi");
    }
}
