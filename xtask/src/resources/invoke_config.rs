//! The `invoke-config` kind: a function's asynchronous invocation settings (Lambda's "event
//! invoke configuration"): how often Lambda retries an event the function failed
//! (`retry_attempts`), how long an event may wait (`max_event_age_seconds`), and where an
//! event goes when both are spent (`on_failure`: a queue of the stack). S3 invokes the
//! function asynchronously, so without a destination a picture that failed every try is
//! dropped and nobody is told.
//!
//! Written with `PutFunctionEventInvokeConfig`, which replaces the whole configuration (the
//! emulator serves no `UpdateFunctionEventInvokeConfig`, and Put leaves nothing stale), on
//! the unqualified function: what S3's notifications invoke. Unset values are Lambda's
//! defaults (2 retries, 6 hours), so the plan compares what Lambda applies.
//!
//! What Lambda answers, and what is done about it:
//! - `InvalidParameterValueException` "The function's execution role does not have
//!   permissions to call SendMessage on …": Lambda checks the role may send to the
//!   destination, and a role policy this run just wrote is not visible to it at once (IAM
//!   propagation). Waited out, bounded, shown: terraform-provider-aws retries the same
//!   message (and "destination ARN … is invalid", a queue not visible yet) for its IAM
//!   propagation timeout.
//! - `ResourceConflictException`: the function is being updated; waited out likewise.
//! - `ResourceNotFoundException` on Get or Delete: no configuration (or no function).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cloudformation::Synthesis;
use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::TypedProps;
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};
use crate::aws::{until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// The `invoke-config` kind.
pub(crate) struct InvokeConfig;

/// Lambda's defaults, which apply to whatever the stack leaves unset.
const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
const DEFAULT_MAX_EVENT_AGE_SECONDS: u32 = 21_600;

/// An invoke configuration's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InvokeConfigProps {
    /// The ARN of the on-failure destination (a queue), or `None`.
    pub on_failure: Option<String>,
    pub retry_attempts: u32,
    pub max_event_age_seconds: u32,
}

impl TypedProps for InvokeConfigProps {}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .functions
        .values()
        .filter_map(|function| {
            let invoke = function.async_invoke.as_ref()?;
            let queue = stack.failure_queue(function);
            let mut depends_on = vec![
                Address::new(Kind::Function, &function.logical),
                // Lambda checks the role's policy lets it send to the destination.
                Address::new(Kind::Role, &function.logical),
            ];
            depends_on.extend(queue.map(|q| Address::new(Kind::Queue, &q.logical)));
            Some(Desired {
                address: Address::new(Kind::InvokeConfig, &function.logical),
                physical: function.name.clone(),
                props: InvokeConfigProps {
                    on_failure: queue.map(|q| q.arn.clone()),
                    retry_attempts: invoke.retry_attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS),
                    max_event_age_seconds: invoke
                        .max_event_age_seconds
                        .unwrap_or(DEFAULT_MAX_EVENT_AGE_SECONDS),
                }
                .into_props(),
                depends_on,
                retain: false,
            })
        })
        .collect()
}

fn is_not_found(err: &AwsError) -> bool {
    err.is("ResourceNotFoundException")
}

pub async fn read(clients: &Clients, function: &str) -> anyhow::Result<Option<Observed>> {
    let out = match clients
        .lambda
        .get_function_event_invoke_config()
        .function_name(function)
        .send()
        .await
        .with_aws_context(|| {
            format!("while reading the asynchronous invocation settings of `{function}`")
        }) {
        Ok(out) => out,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let on_failure = out
        .destination_config()
        .and_then(|d| d.on_failure())
        .and_then(|d| d.destination())
        .filter(|arn| !arn.is_empty())
        .map(str::to_owned);
    let count =
        |n: Option<i32>, default: u32| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
    Ok(Some(Observed {
        physical: function.to_owned(),
        props: InvokeConfigProps {
            on_failure,
            retry_attempts: count(out.maximum_retry_attempts(), DEFAULT_RETRY_ATTEMPTS),
            max_event_age_seconds: count(
                out.maximum_event_age_in_seconds(),
                DEFAULT_MAX_EVENT_AGE_SECONDS,
            ),
        }
        .into_props(),
    }))
}

/// What this kind waits out: the role's new permission, or a new queue, reaching Lambda;
/// or the function's own update in progress.
const PROPAGATION: &str = "Lambda to see the role's permission on the failure queue";

fn not_yet(err: &AwsError) -> bool {
    let message = err.message().unwrap_or_default();
    (err.is("InvalidParameterValueException")
        && (message.contains("does not have permissions") || message.contains("destination ARN")))
        || err.is("ResourceConflictException")
}

pub async fn put(
    clients: &Clients,
    want: &Desired,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure};
    let function = want.physical.as_str();
    let props = InvokeConfigProps::of(&want.props)?;
    let destination = DestinationConfig::builder()
        .set_on_failure(
            props
                .on_failure
                .as_ref()
                .map(|arn| OnFailure::builder().destination(arn).build()),
        )
        .build();
    let retries = i32::try_from(props.retry_attempts)?;
    let age = i32::try_from(props.max_event_age_seconds)?;
    until_propagated(PROPAGATION, on_wait, not_yet, || async {
        clients
            .lambda
            .put_function_event_invoke_config()
            .function_name(function)
            .destination_config(destination.clone())
            .maximum_retry_attempts(retries)
            .maximum_event_age_in_seconds(age)
            .send()
            .await
            .with_aws_context(|| {
                format!("while setting the asynchronous invocation settings of `{function}`")
            })
            .map_err(anyhow::Error::from)
    })
    .await?;
    Ok(())
}

pub async fn delete(clients: &Clients, function: &str) -> anyhow::Result<()> {
    match clients
        .lambda
        .delete_function_event_invoke_config()
        .function_name(function)
        .send()
        .await
        .with_aws_context(|| {
            format!("while removing the asynchronous invocation settings of `{function}`")
        }) {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

impl ResourceKind for InvokeConfig {
    const NAME: &'static str = "invoke-config";
    const SERVICE: &'static str = "lambda";
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::Lambda::EventInvokeConfig", "InvokeConfig"));

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let number = |key: &str| {
            p[key]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or_default()
        };
        let props = InvokeConfigProps {
            on_failure: p["DestinationConfig"]["OnFailure"]["Destination"]
                .as_str()
                .map(str::to_owned),
            retry_attempts: number("MaximumRetryAttempts"),
            max_event_age_seconds: number("MaximumEventAgeInSeconds"),
        }
        .into_props();
        let name = p["FunctionName"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    fn cloudformation_properties(want: &Desired, _synthesis: &mut Synthesis<'_>) -> Option<Value> {
        let props = InvokeConfigProps::of(&want.props).ok()?;
        let mut properties = json!({
            "FunctionName": want.physical,
            // Required by CloudFormation; `$LATEST` is what the unqualified function (S3's
            // notifications) runs, as the SDK engine's unqualified configuration.
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": props.retry_attempts,
            "MaximumEventAgeInSeconds": props.max_event_age_seconds,
        });
        if let Some(arn) = props.on_failure {
            properties["DestinationConfig"] = json!({ "OnFailure": { "Destination": arn } });
        }
        Some(properties)
    }

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let functions: Vec<String> = stack
            .functions
            .values()
            .filter(|f| f.async_invoke.is_some())
            .map(|f| f.arn.clone())
            .collect();
        vec![Grant::new(
            "AsyncInvokeSettings",
            &[
                "lambda:GetFunctionEventInvokeConfig",
                "lambda:PutFunctionEventInvokeConfig",
                "lambda:DeleteFunctionEventInvokeConfig",
            ],
            functions,
        )]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    async fn read(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
    ) -> anyhow::Result<Option<Observed>> {
        read(clients, physical).await
    }

    async fn converge(
        clients: &Clients,
        _ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        // The put replaces every setting at once: nothing to send when none differs.
        if have.is_some_and(|have| have.props == want.props) {
            return Ok(());
        }
        put(clients, want, on_wait).await
    }

    async fn remove(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        _settings: &Settings,
    ) -> anyhow::Result<Removal> {
        delete(clients, physical).await?;
        Ok(Removal::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_lambda::operation as op;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock::{self, assert_all_used, json_error};
    use crate::resources::fixtures::dev_stack;

    fn the_config() -> Desired {
        desired(&dev_stack())
            .into_iter()
            .next()
            .expect("the shipped function has on_failure")
    }

    /// Lambda's answer for error `code` with `message`.
    fn lambda_error(code: &str, message: &str) -> (u16, Option<String>) {
        (
            400,
            Some(json!({ "__type": code, "Type": "User", "message": message }).to_string()),
        )
    }

    /// The shipped stack: failed events go to its failures queue, Lambda's default retries.
    #[test]
    fn the_shipped_function_sends_failed_events_to_its_queue() {
        let want = the_config();
        let props = InvokeConfigProps::of(&want.props).expect("typed");
        assert_eq!(
            props,
            InvokeConfigProps {
                on_failure: Some(
                    "arn:aws:sqs:eu-west-2:123456789012:exif-pipeline-dev-failures".into()
                ),
                retry_attempts: 2,
                max_event_age_seconds: 21_600,
            }
        );
        assert!(want
            .depends_on
            .contains(&Address::new(Kind::Queue, "failures")));
    }

    /// Right after the role gained sqs:SendMessage, Lambda may not see it yet: the Put is
    /// repeated on that answer, shown, until it is accepted.
    #[tokio::test]
    async fn the_roles_new_permission_is_waited_for() {
        let want = the_config();
        let (status, body) = lambda_error(
            "InvalidParameterValueException",
            "The function's execution role does not have permissions to call SendMessage on arn:aws:sqs:eu-west-2:123456789012:exif-pipeline-dev-failures",
        );
        let rule = mock!(aws_sdk_lambda::Client::put_function_event_invoke_config)
            .sequence()
            .http_status(status, body)
            .output(|| {
                op::put_function_event_invoke_config::PutFunctionEventInvokeConfigOutput::builder()
                    .build()
            })
            .build();
        let clients = mock::sqs_clients(&[], &[&rule]);
        let waits = Mutex::new(Vec::new());
        let on_wait = |line: &str| waits.lock().unwrap().push(line.to_owned());
        put(&clients, &want, &on_wait).await.expect("put");
        assert_eq!(rule.num_calls(), 2);
        let waits = waits.into_inner().unwrap();
        assert!(
            waits.len() == 1 && waits[0].contains("InvalidParameterValueException"),
            "{waits:?}"
        );
    }

    /// Any other invalid parameter is a mistake, not propagation: refused at once.
    #[tokio::test]
    async fn other_invalid_parameters_are_not_waited_out() {
        let want = the_config();
        let (status, body) = lambda_error(
            "InvalidParameterValueException",
            "1 validation error detected: MaximumRetryAttempts must be at most 2",
        );
        let rule = mock!(aws_sdk_lambda::Client::put_function_event_invoke_config)
            .sequence()
            .http_status(status, body)
            .build();
        let clients = mock::sqs_clients(&[], &[&rule]);
        let err = put(&clients, &want, &|_| panic!("nothing is waited for"))
            .await
            .expect_err("refused");
        assert!(
            format!("{err:#}").contains("MaximumRetryAttempts"),
            "{err:#}"
        );
    }

    /// No configuration reads as absent; Lambda's unset values read as its defaults.
    #[tokio::test]
    async fn reads_absent_and_defaults() {
        let (status, body) = json_error("ResourceNotFoundException");
        let none = mock!(aws_sdk_lambda::Client::get_function_event_invoke_config)
            .sequence()
            .http_status(status, body)
            .build();
        let clients = mock::sqs_clients(&[], &[&none]);
        assert_eq!(read(&clients, "f").await.expect("read"), None);

        let bare =
            mock!(aws_sdk_lambda::Client::get_function_event_invoke_config).then_output(|| {
                op::get_function_event_invoke_config::GetFunctionEventInvokeConfigOutput::builder()
                    .build()
            });
        let clients = mock::sqs_clients(&[], &[&bare]);
        let have = read(&clients, "f").await.expect("read").expect("exists");
        assert_eq!(
            InvokeConfigProps::of(&have.props).expect("typed"),
            InvokeConfigProps {
                on_failure: None,
                retry_attempts: 2,
                max_event_age_seconds: 21_600
            }
        );
        assert_all_used(&[&none, &bare]);
    }
}
