//! The `queue` kind: an SQS standard queue (`queues.<name>`), encrypted at rest with SQS's
//! own keys (SSE-SQS: no KMS key to manage or to grant Lambda), keeping messages for
//! `retention_days`, tagged. Its use here: a function's `on_failure` destination, where
//! Lambda puts the events that failed every try and the function its refusal records.
//!
//! The queue holds data (records someone has to look at), so `destroy` treats it like a
//! bucket: one that still holds messages is kept unless the stack says `force_destroy`.
//!
//! What SQS answers, and what is done about it:
//! - `QueueDeletedRecently`: a queue of that name was deleted less than 60 seconds ago (a
//!   destroy then deploy) and SQS refuses the name until then. Waited out, bounded, shown.
//! - `QueueNameExists` (`QueueAlreadyExists`): CreateQueue finds a queue of that name with
//!   other attributes (CreateQueue is otherwise idempotent). Read, checked for ownership by
//!   its tags, and brought to the stack's attributes.
//! - `QueueDoesNotExist` (`AWS.SimpleQueueService.NonExistentQueue` in the query-compatible
//!   form the SDK may report): "not there". Right after CreateQueue, SQS may answer it for a
//!   moment ("wait at least one second after the queue is created to be able to use it",
//!   CreateQueue's reference): what uses the queue next (the invoke configuration) waits
//!   that out.
//! - Attribute changes take up to 60 seconds to reach every SQS server (up to 15 minutes for
//!   `MessageRetentionPeriod`, SetQueueAttributes' reference): the engine's post-apply re-read
//!   tolerates that window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cloudformation::{always, tag_list, CheckovSkip, Synthesis};
use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::{changed, TypedProps};
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};
use crate::aws::{until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// The `queue` kind.
pub(crate) struct Queue;

/// Seconds in a day: SQS counts retention in seconds, the stack in days.
const DAY: i64 = 86_400;

/// A queue's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct QueueProps {
    /// Whole days, or the seconds SQS holds when they are not whole days (`"345601 s"`).
    pub retention_days: Value,
    /// `SSE-SQS`, `SSE-KMS` (a customer's key, set outside the stack) or `none`.
    pub encryption: String,
    pub tags: BTreeMap<String, String>,
}

impl TypedProps for QueueProps {}

impl QueueProps {
    /// `MessageRetentionPeriod`, in seconds, when the stack's days are whole days.
    fn retention_seconds(&self) -> Option<i64> {
        self.retention_days.as_i64().map(|days| days * DAY)
    }
}

/// What the stack wants: SSE-SQS, its retention, the stack's tags.
const SSE_SQS: &str = "SSE-SQS";

fn retention_value(seconds: i64) -> Value {
    if seconds % DAY == 0 {
        json!(seconds / DAY)
    } else {
        json!(format!("{seconds} s"))
    }
}

/// Which of SQS's codes mean "no such queue" (the JSON protocol's and the query-compatible
/// one the SDK may surface instead).
fn is_missing(err: &AwsError) -> bool {
    err.is("QueueDoesNotExist") || err.is("AWS.SimpleQueueService.NonExistentQueue")
}

fn is_deleted_recently(err: &AwsError) -> bool {
    err.is("QueueDeletedRecently") || err.is("AWS.SimpleQueueService.QueueDeletedRecently")
}

fn is_name_taken(err: &AwsError) -> bool {
    err.is("QueueNameExists") || err.is("QueueAlreadyExists")
}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .queues
        .values()
        .map(|queue| Desired {
            address: Address::new(Kind::Queue, &queue.logical),
            physical: queue.name.clone(),
            props: QueueProps {
                retention_days: json!(queue.retention_days),
                encryption: SSE_SQS.to_owned(),
                tags: stack.tags.clone(),
            }
            .into_props(),
            depends_on: Vec::new(),
            retain: false,
        })
        .collect()
}

/// The queue's URL, or `None` when there is no queue of that name.
async fn url_of(clients: &Clients, name: &str) -> anyhow::Result<Option<String>> {
    match clients
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_aws_context(|| format!("while looking up SQS queue `{name}`"))
    {
        Ok(out) => Ok(out.queue_url),
        Err(err) if is_missing(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The attributes this kind reads, by name.
async fn attributes(
    clients: &Clients,
    name: &str,
    url: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::MessageRetentionPeriod)
        .attribute_names(A::SqsManagedSseEnabled)
        .attribute_names(A::KmsMasterKeyId)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .with_aws_context(|| format!("while reading the attributes of SQS queue `{name}`"))?;
    Ok(out
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect())
}

pub async fn read(clients: &Clients, name: &str) -> anyhow::Result<Option<Observed>> {
    let Some(url) = url_of(clients, name).await? else {
        return Ok(None);
    };
    let attributes = match attributes(clients, name, &url).await {
        Ok(attributes) => attributes,
        // Deleted between the two calls.
        Err(err) if is_missing(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let tags = clients
        .sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .with_aws_context(|| format!("while reading the tags of SQS queue `{name}`"))?
        .tags
        .unwrap_or_default();
    let encryption = if attributes
        .get("KmsMasterKeyId")
        .is_some_and(|k| !k.is_empty())
    {
        "SSE-KMS"
    } else if attributes
        .get("SqsManagedSseEnabled")
        .is_some_and(|v| v == "true")
    {
        SSE_SQS
    } else {
        "none"
    };
    let retention = attributes
        .get("MessageRetentionPeriod")
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(Value::Null, retention_value);
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: QueueProps {
            retention_days: retention,
            encryption: encryption.to_owned(),
            tags: tags.into_iter().collect(),
        }
        .into_props(),
    }))
}

/// What this kind waits out after its own create or delete.
const RECENTLY_DELETED: &str = "SQS to release the name of a queue deleted in the last minute";

/// Creates the queue when `have` is `None`, then brings its attributes and the stack's tags
/// to `want`.
pub async fn converge(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let props = QueueProps::of(&want.props)?;
    let retention = props
        .retention_seconds()
        .ok_or_else(|| anyhow::anyhow!("queue `{name}`: retention must be whole days"))?;
    let mut have = have.cloned();
    // Only a queue just created comes with its URL; an existing one's is looked up when a
    // change needs it (a converge with nothing to change sends nothing).
    let created_url = if have.is_none() {
        let created = until_propagated(RECENTLY_DELETED, on_wait, is_deleted_recently, || async {
            use aws_sdk_sqs::types::QueueAttributeName as A;
            clients
                .sqs
                .create_queue()
                .queue_name(name)
                .attributes(A::MessageRetentionPeriod, retention.to_string())
                .attributes(A::SqsManagedSseEnabled, "true")
                .set_tags(Some(props.tags.clone().into_iter().collect()))
                .send()
                .await
                .with_aws_context(|| format!("while creating SQS queue `{name}`"))
                .map_err(anyhow::Error::from)
        })
        .await;
        match created {
            Ok(out) => {
                have = Some(Observed {
                    physical: name.to_owned(),
                    props: want.props.clone(),
                });
                Some(
                    out.queue_url.ok_or_else(|| {
                        anyhow::anyhow!("CreateQueue returned no URL for `{name}`")
                    })?,
                )
            }
            Err(err) if AwsError::find(&err).is_some_and(is_name_taken) => {
                let found = read(clients, name).await?.ok_or_else(|| {
                    anyhow::anyhow!(
                        "SQS queue `{name}` exists (QueueNameExists) but cannot be read"
                    )
                })?;
                check_ours((&ctx.stack, &ctx.env, &ctx.region), want, &found)?;
                have = Some(found);
                None
            }
            Err(err) => return Err(err),
        }
    } else {
        None
    };
    let observed = have
        .as_ref()
        .map(|h| QueueProps::of(&h.props))
        .transpose()?;
    let observed = observed.as_ref();
    let mut attributes = Vec::new();
    if changed(&props.retention_days, observed.map(|h| &h.retention_days)) {
        attributes.push(("MessageRetentionPeriod", retention.to_string()));
    }
    if changed(&props.encryption, observed.map(|h| &h.encryption)) {
        // SSE-SQS replaces a KMS key: both cannot be set.
        attributes.push(("KmsMasterKeyId", String::new()));
        attributes.push(("SqsManagedSseEnabled", "true".to_owned()));
    }
    let tags = super::tags::changes(&want.props, have.as_ref().map(|h| &h.props));
    if attributes.is_empty() && tags.remove.is_empty() && tags.set.is_empty() {
        return Ok(());
    }
    let url = match created_url {
        Some(url) => url,
        None => url_of(clients, name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("SQS queue `{name}` disappeared while deploying"))?,
    };
    if !attributes.is_empty() {
        let set = attributes.iter().fold(
            clients.sqs.set_queue_attributes().queue_url(&url),
            |call, (key, value)| call.attributes((*key).into(), value),
        );
        set.send()
            .await
            .with_aws_context(|| format!("while setting the attributes of SQS queue `{name}`"))?;
    }
    if !tags.remove.is_empty() {
        clients
            .sqs
            .untag_queue()
            .queue_url(&url)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging SQS queue `{name}`"))?;
    }
    if !tags.set.is_empty() {
        clients
            .sqs
            .tag_queue()
            .queue_url(&url)
            .set_tags(Some(tags.set.into_iter().collect()))
            .send()
            .await
            .with_aws_context(|| format!("while tagging SQS queue `{name}`"))?;
    }
    Ok(())
}

/// SQS names are per account and region: a queue of that name tagged for another stack or
/// env is not ours; an untagged one was not made by stripstack either.
fn check_ours(
    (stack, env, region): (&str, &str, &str),
    want: &Desired,
    have: &Observed,
) -> anyhow::Result<()> {
    let tags = QueueProps::of(&have.props)?.tags;
    super::tags::check_ours("SQS queue", &want.physical, &tags, stack, env, Some(region))
}

/// Messages in the queue: visible, in flight and delayed (SQS's approximate counts).
fn messages(attributes: &BTreeMap<String, String>) -> u64 {
    [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    .iter()
    .filter_map(|key| attributes.get(*key)?.parse::<u64>().ok())
    .sum()
}

/// Deletes the queue, unless it holds messages and `force_destroy` is off.
pub async fn delete(clients: &Clients, name: &str, force_destroy: bool) -> anyhow::Result<Removal> {
    let Some(url) = url_of(clients, name).await? else {
        return Ok(Removal::Deleted);
    };
    if !force_destroy {
        let held = match attributes(clients, name, &url).await {
            Ok(attributes) => messages(&attributes),
            Err(err) if is_missing(&err) => return Ok(Removal::Deleted),
            Err(err) => return Err(err.into()),
        };
        if held > 0 {
            return Ok(Removal::KeptNotEmpty {
                holds: format!("{held} messages; `cargo xtask failures` shows them"),
            });
        }
    }
    match clients
        .sqs
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .with_aws_context(|| format!("while deleting SQS queue `{name}`"))
    {
        Ok(_) => Ok(Removal::Deleted),
        Err(err) if is_missing(&err) => Ok(Removal::Deleted),
        Err(err) => Err(err.into()),
    }
}

/// One message of a queue, as `cargo xtask failures` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub id: String,
    /// What deletes it, valid while it is hidden from other readers.
    pub receipt_handle: String,
    pub body: String,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub sent_ms: Option<u64>,
}

/// How long [`peek`] hides what it read from other readers: long enough to page through
/// the queue and act on what it found (`--retry`, `--purge`), then it is shown again.
const PEEK_VISIBILITY_SECONDS: i32 = 60;
/// The most messages one ReceiveMessage returns.
const RECEIVE_BATCH: i32 = 10;

/// Reads up to `limit` messages of queue `name` without consuming them: each is hidden
/// while the queue is paged through (SQS returns at most 10 per call and only those
/// visible), then made visible again by `release`; nothing is deleted. Long polling (1 s)
/// asks every SQS server, so a page is empty only when the queue is.
pub(crate) async fn peek(
    clients: &Clients,
    name: &str,
    limit: usize,
) -> anyhow::Result<(String, Vec<Message>)> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let url = url_of(clients, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("SQS queue `{name}` does not exist: deploy the stack"))?;
    let mut messages: Vec<Message> = Vec::new();
    while messages.len() < limit {
        let want =
            i32::try_from(limit - messages.len()).map_or(RECEIVE_BATCH, |n| n.min(RECEIVE_BATCH));
        let page = clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(want)
            .visibility_timeout(PEEK_VISIBILITY_SECONDS)
            .wait_time_seconds(1)
            .message_system_attribute_names(A::SentTimestamp)
            .send()
            .await
            .with_aws_context(|| format!("while reading the messages of SQS queue `{name}`"))?;
        let received = page.messages.unwrap_or_default();
        if received.is_empty() {
            break;
        }
        for message in received {
            let (Some(id), Some(receipt_handle)) = (message.message_id, message.receipt_handle)
            else {
                continue;
            };
            if messages.iter().any(|m| m.id == id) {
                continue;
            }
            let sent_ms = message
                .attributes
                .as_ref()
                .and_then(|a| a.get(&A::SentTimestamp))
                .and_then(|t| t.parse().ok());
            messages.push(Message {
                id,
                receipt_handle,
                body: message.body.unwrap_or_default(),
                sent_ms,
            });
        }
    }
    Ok((url, messages))
}

/// Shows `messages` (read by [`peek`]) to other readers again at once.
pub(crate) async fn release(
    clients: &Clients,
    url: &str,
    messages: &[&Message],
) -> anyhow::Result<()> {
    use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Entry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt_handle)
                    .visibility_timeout(0)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        clients
            .sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .with_aws_context(|| "while showing the failure records again".to_owned())?;
    }
    Ok(())
}

/// Deletes `messages` (read by [`peek`]); returns how many SQS deleted.
pub(crate) async fn delete_messages(
    clients: &Clients,
    url: &str,
    messages: &[&Message],
) -> anyhow::Result<usize> {
    use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry as Entry;
    let mut deleted = 0;
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Entry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt_handle)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = clients
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .with_aws_context(|| "while deleting failure records".to_owned())?;
        deleted += out.successful.len();
        if let Some(failed) = out.failed.first() {
            anyhow::bail!(
                "SQS did not delete {} record(s): {} ({})",
                out.failed.len(),
                failed.message.as_deref().unwrap_or("no reason given"),
                failed.code
            );
        }
    }
    Ok(deleted)
}

/// What the state keeps for a queue's delete.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DeleteSettings {
    /// Delete it even while it holds messages.
    #[serde(default)]
    force_destroy: bool,
}

impl ResourceKind for Queue {
    const NAME: &'static str = "queue";
    const SERVICE: &'static str = "sqs";
    // The invoke configuration names it as a destination.
    const DELETED_AFTER: &'static [Kind] = &[Kind::InvokeConfig];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> = Some(("AWS::SQS::Queue", "Queue"));
    // Both engines create every queue with SSE-SQS.
    const CHECKOV_SKIPS: &'static [CheckovSkip] = &[CheckovSkip {
        id: "CKV_AWS_27",
        reason: "The queue is encrypted at rest with SSE-SQS (SqsManagedSseEnabled: true, keys \
                 owned by SQS), which this check does not recognise: it looks only for a KMS \
                 key (KmsMasterKeyId). A customer managed key would add a key policy and KMS \
                 grants for the function's role, for records of object keys and error messages.",
        applies: always,
    }];
    const TAGGED: bool = true;

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let seconds = p["MessageRetentionPeriod"].as_i64().unwrap_or_default();
        let encryption = if p["SqsManagedSseEnabled"] == json!(true) {
            SSE_SQS
        } else {
            "none"
        };
        let props = QueueProps {
            retention_days: retention_value(seconds),
            encryption: encryption.to_owned(),
            tags: super::cloudformation::tag_map(p),
        }
        .into_props();
        let name = p["QueueName"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    fn cloudformation_properties(want: &Desired, _synthesis: &mut Synthesis<'_>) -> Option<Value> {
        let props = QueueProps::of(&want.props).ok()?;
        Some(json!({
            "QueueName": want.physical,
            "MessageRetentionPeriod": props.retention_seconds(),
            "SqsManagedSseEnabled": true,
            "Tags": tag_list(&props.tags),
        }))
    }

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let queues: Vec<String> = stack.queues.values().map(|q| q.arn.clone()).collect();
        vec![Grant::new(
            "StackQueues",
            &[
                "sqs:CreateQueue",
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:ListQueueTags",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:DeleteQueue",
            ],
            queues,
        )]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    fn settings(stack: &ResolvedStack, address: &Address) -> Settings {
        let settings = DeleteSettings {
            force_destroy: stack
                .queues
                .get(&address.name)
                .is_some_and(|q| q.force_destroy),
        };
        match serde_json::to_value(settings) {
            Ok(Value::Object(map)) => map,
            _ => Settings::new(),
        }
    }

    fn check_adoption(
        stack: &ResolvedStack,
        want: &Desired,
        have: &Observed,
    ) -> anyhow::Result<()> {
        check_ours((&stack.stack, &stack.env, &stack.region), want, have)
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
        ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        converge(clients, &ctx.read, want, have, on_wait).await
    }

    async fn remove(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        settings: &Settings,
    ) -> anyhow::Result<Removal> {
        let force_destroy =
            serde_json::from_value::<DeleteSettings>(Value::Object(settings.clone()))
                .is_ok_and(|s| s.force_destroy);
        delete(clients, physical, force_destroy).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_sqs::operation as op;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock::{self, assert_all_used};
    use crate::resources::fixtures::{dev_ctx, dev_stack};

    fn the_queue() -> Desired {
        desired(&dev_stack()).into_iter().next().expect("a queue")
    }

    const URL: &str = "https://sqs.eu-west-2.amazonaws.com/123456789012/exif-pipeline-dev-failures";

    /// SQS's JSON-protocol error body for `code`.
    fn error_response(code: &str) -> (u16, Option<String>) {
        (
            400,
            Some(format!(
                "{{\"__type\":\"com.amazonaws.sqs#{code}\",\"message\":\"mock {code}\"}}"
            )),
        )
    }

    fn url_found() -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_sqs::Client::get_queue_url).then_output(|| {
            op::get_queue_url::GetQueueUrlOutput::builder()
                .queue_url(URL)
                .build()
        })
    }

    fn counts(visible: &str) -> aws_smithy_mocks::Rule {
        let visible = visible.to_owned();
        mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(move || {
            use aws_sdk_sqs::types::QueueAttributeName as A;
            op::get_queue_attributes::GetQueueAttributesOutput::builder()
                .attributes(A::ApproximateNumberOfMessages, visible.clone())
                .attributes(A::ApproximateNumberOfMessagesNotVisible, "0")
                .attributes(A::ApproximateNumberOfMessagesDelayed, "0")
                .build()
        })
    }

    /// A destroy then deploy within a minute: SQS refuses the name (`QueueDeletedRecently`)
    /// until it is released; the create is repeated, shown, and succeeds.
    #[tokio::test]
    async fn a_name_deleted_in_the_last_minute_is_waited_for() {
        let want = the_queue();
        let (status, body) = error_response("QueueDeletedRecently");
        let create = mock!(aws_sdk_sqs::Client::create_queue)
            .sequence()
            .http_status(status, body)
            .output(|| {
                op::create_queue::CreateQueueOutput::builder()
                    .queue_url(URL)
                    .build()
            })
            .build();
        let clients = mock::sqs_clients(&[&create], &[]);
        let waits = Mutex::new(Vec::new());
        let on_wait = |line: &str| waits.lock().unwrap().push(line.to_owned());
        converge(&clients, &dev_ctx(), &want, None, &on_wait)
            .await
            .expect("created");
        assert_eq!(create.num_calls(), 2);
        let waits = waits.into_inner().unwrap();
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert!(waits[0].contains("deleted in the last minute"), "{waits:?}");
    }

    /// A queue of that name tagged for another stack is not taken over.
    #[tokio::test]
    async fn a_queue_of_another_stack_is_refused() {
        let want = the_queue();
        let (status, body) = error_response("QueueNameExists");
        let create = mock!(aws_sdk_sqs::Client::create_queue)
            .sequence()
            .http_status(status, body)
            .build();
        let url = url_found();
        let attributes = counts("0");
        let tags = mock!(aws_sdk_sqs::Client::list_queue_tags).then_output(|| {
            op::list_queue_tags::ListQueueTagsOutput::builder()
                .tags("stack", "someone-else")
                .tags("env", "dev")
                .build()
        });
        let clients = mock::sqs_clients(&[&create, &url, &attributes, &tags], &[]);
        let err = converge(&clients, &dev_ctx(), &want, None, &|_| {})
            .await
            .expect_err("not ours");
        assert!(format!("{err:#}").contains("someone-else"), "{err:#}");
        assert_all_used(&[&create, &url, &attributes, &tags]);
    }

    /// Records are data: a queue holding messages is kept by `destroy` unless the stack said
    /// `force_destroy`, and says how to see them.
    #[tokio::test]
    async fn a_queue_holding_records_is_kept_without_force_destroy() {
        let url = url_found();
        let attributes = counts("3");
        let clients = mock::sqs_clients(&[&url, &attributes], &[]);
        let removal = delete(&clients, "exif-pipeline-dev-failures", false)
            .await
            .expect("no error");
        assert_eq!(
            removal,
            Removal::KeptNotEmpty {
                holds: "3 messages; `cargo xtask failures` shows them".into()
            }
        );
        let url = url_found();
        let deleted = mock!(aws_sdk_sqs::Client::delete_queue)
            .then_output(|| op::delete_queue::DeleteQueueOutput::builder().build());
        let clients = mock::sqs_clients(&[&url, &deleted], &[]);
        let removal = delete(&clients, "exif-pipeline-dev-failures", true)
            .await
            .expect("deleted");
        assert_eq!(removal, Removal::Deleted);
        assert_all_used(&[&url, &deleted]);
    }

    /// "No such queue", in the form the SDK reports it (the query-compatible code), reads as
    /// absent.
    #[tokio::test]
    async fn a_missing_queue_reads_as_absent() {
        let missing = mock!(aws_sdk_sqs::Client::get_queue_url)
            .sequence()
            .http_status(
                400,
                Some(
                    "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"The specified queue does not exist.\"}"
                        .into(),
                ),
            )
            .build();
        let clients = mock::sqs_clients(&[&missing], &[]);
        assert_eq!(read(&clients, "nope").await.expect("read"), None);
    }
}
