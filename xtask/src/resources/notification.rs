//! Bucket notification entries that invoke our functions. A bucket has one notification
//! configuration shared with everyone: we own only the entries whose id starts with
//! `stripstack-`, and reads report only those (writes must keep the others).

use serde::{Deserialize, Serialize};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::TypedProps;
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};
use crate::aws::{until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

impl Entry {
    /// The order entries without ids are compared in: by their JSON text, keys sorted.
    pub(crate) fn sort_key(&self) -> String {
        serde_json::to_value(self)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

/// Prefix of every notification entry id this tool owns.
pub const ID_PREFIX: &str = "stripstack-";

/// A bucket's notification entries that invoke our functions, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NotificationProps {
    /// Sorted by id.
    pub entries: Vec<Entry>,
}

impl TypedProps for NotificationProps {}

/// One Lambda notification entry: the function, the events, the key filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// `stripstack-…` for ours; `None` for an entry S3 holds without one, and in
    /// CloudFormation (where S3 generates the ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub function_arn: String,
    /// Sorted, without duplicates.
    pub events: Vec<String>,
    /// `""`: any key.
    pub prefix: String,
    pub suffix: String,
}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    let mut per_bucket: std::collections::BTreeMap<&str, Vec<Entry>> = Default::default();
    for function in stack.functions.values() {
        for (index, trigger) in function.triggers.iter().enumerate() {
            let mut events: Vec<&str> = trigger.events.iter().map(|e| e.s3_event()).collect();
            events.sort_unstable();
            events.dedup();
            let suffixes: Vec<&str> = if trigger.suffixes.is_empty() {
                vec![""]
            } else {
                trigger.suffixes.iter().map(String::as_str).collect()
            };
            for suffix in suffixes {
                per_bucket
                    .entry(trigger.bucket.as_str())
                    .or_default()
                    .push(Entry {
                        id: Some(format!("{ID_PREFIX}{}-{index}{suffix}", function.logical)),
                        function_arn: function.arn.clone(),
                        events: events.iter().map(|&e| e.to_owned()).collect(),
                        prefix: trigger.prefix.clone(),
                        suffix: suffix.to_owned(),
                    });
            }
        }
    }
    per_bucket
        .into_iter()
        .filter_map(|(logical, mut entries)| {
            let bucket = stack.buckets.get(logical)?;
            entries.sort_by(|a, b| a.id.cmp(&b.id));
            let depends_on = stack
                .functions
                .values()
                .filter(|f| f.triggers.iter().any(|t| t.bucket == logical))
                .map(|f| Address::new(Kind::Permission, format!("{}.{logical}", f.logical)))
                .chain([Address::new(Kind::Bucket, logical)])
                .collect();
            Some(Desired {
                address: Address::new(Kind::Notification, logical),
                physical: bucket.name.clone(),
                props: NotificationProps { entries }.into_props(),
                depends_on,
                retain: false,
            })
        })
        .collect()
}

pub async fn read(
    clients: &Clients,
    _ctx: &ReadCtx,
    bucket: &str,
) -> anyhow::Result<Option<Observed>> {
    let Some(entries) = function_entries(clients, bucket, true).await? else {
        return Ok(None);
    };
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(Observed {
        physical: bucket.to_owned(),
        props: NotificationProps { entries }.into_props(),
    }))
}

/// The bucket's function notification entries, sorted by id, in the shape of `desired`'s
/// (`None`: no such bucket). `ours_only`: just the entries whose id marks them as ours; the
/// CloudFormation engine cannot choose ids, so checks that must hold for both engines compare
/// all entries without their ids.
pub async fn function_entries(
    clients: &Clients,
    bucket: &str,
    ours_only: bool,
) -> anyhow::Result<Option<Vec<Entry>>> {
    let config = match clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out,
        Err(err) if crate::aws::error_code(&err) == Some("NoSuchBucket") => return Ok(None),
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while reading the notification configuration of bucket `{bucket}`"),
            )
            .into())
        }
    };
    let mut entries: Vec<Entry> = config
        .lambda_function_configurations()
        .iter()
        .filter(|c| !ours_only || c.id().is_some_and(|id| id.starts_with(ID_PREFIX)))
        .map(|c| {
            let mut events: Vec<String> =
                c.events().iter().map(|e| e.as_str().to_owned()).collect();
            events.sort_unstable();
            events.dedup();
            Entry {
                id: c.id().map(str::to_owned),
                function_arn: c.lambda_function_arn().to_owned(),
                events,
                prefix: filter_value(c.filter(), "prefix"),
                suffix: filter_value(c.filter(), "suffix"),
            }
        })
        .collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Some(entries))
}

/// Read-modify-write of the bucket's notification configuration: our entries become
/// `entries`, everyone else's are kept untouched. Overlapping rules are refused, as S3
/// would refuse them (and the emulator silently accepts them).
pub async fn put(clients: &Clients, bucket: &str, entries: &[Entry]) -> anyhow::Result<()> {
    use aws_sdk_s3::types as t;
    let current = clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .with_aws_context(|| {
            format!("while reading the notification configuration of bucket `{bucket}`")
        })?;
    let mut lambdas: Vec<t::LambdaFunctionConfiguration> = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| !c.id().is_some_and(|id| id.starts_with(ID_PREFIX)))
        .cloned()
        .collect();
    for entry in entries {
        lambdas.push(to_sdk(entry)?);
    }
    check_overlaps(
        bucket,
        &lambdas,
        current.queue_configurations(),
        current.topic_configurations(),
    )?;
    let config = t::NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(lambdas))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
        .build();
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .with_aws_context(|| {
            format!("while writing the notification configuration of bucket `{bucket}`")
        })?;
    Ok(())
}

fn to_sdk(entry: &Entry) -> anyhow::Result<aws_sdk_s3::types::LambdaFunctionConfiguration> {
    use aws_sdk_s3::types as t;
    let mut rules = Vec::new();
    for (name, value) in [
        (t::FilterRuleName::Prefix, &entry.prefix),
        (t::FilterRuleName::Suffix, &entry.suffix),
    ] {
        if !value.is_empty() {
            rules.push(t::FilterRule::builder().name(name).value(value).build());
        }
    }
    let events = entry
        .events
        .iter()
        .map(|e| t::Event::from(e.as_str()))
        .collect();
    Ok(t::LambdaFunctionConfiguration::builder()
        .id(entry.id.clone().unwrap_or_default())
        .lambda_function_arn(&entry.function_arn)
        .set_events(Some(events))
        .filter(
            t::NotificationConfigurationFilter::builder()
                .key(
                    t::S3KeyFilter::builder()
                        .set_filter_rules(Some(rules))
                        .build(),
                )
                .build(),
        )
        .build()?)
}

/// One rule's (events, prefix, suffix), for the overlap check.
struct Rule {
    id: String,
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

/// The value of a key filter rule (`prefix`, `suffix`; S3 accepts either case), "" if none.
fn filter_value(
    filter: Option<&aws_sdk_s3::types::NotificationConfigurationFilter>,
    name: &str,
) -> String {
    filter
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .find(|r| {
            r.name()
                .is_some_and(|n| n.as_str().eq_ignore_ascii_case(name))
        })
        .and_then(|r| r.value())
        .unwrap_or_default()
        .to_owned()
}

fn rule_of(
    id: Option<&str>,
    events: &[aws_sdk_s3::types::Event],
    filter: Option<&aws_sdk_s3::types::NotificationConfigurationFilter>,
) -> Rule {
    let value = |name: &str| filter_value(filter, name);
    Rule {
        id: id.unwrap_or("(no id)").to_owned(),
        events: events.iter().map(|e| e.as_str().to_owned()).collect(),
        prefix: value("prefix"),
        suffix: value("suffix"),
    }
}

/// Whether two event patterns (`s3:ObjectCreated:*`, `s3:ObjectCreated:Put`) can match the
/// same event.
fn events_overlap(a: &str, b: &str) -> bool {
    let stem = |e: &str| e.trim_end_matches('*').to_owned();
    let (sa, sb) = (stem(a), stem(b));
    sa.starts_with(&sb) || sb.starts_with(&sa)
}

fn check_overlaps(
    bucket: &str,
    lambdas: &[aws_sdk_s3::types::LambdaFunctionConfiguration],
    queues: &[aws_sdk_s3::types::QueueConfiguration],
    topics: &[aws_sdk_s3::types::TopicConfiguration],
) -> anyhow::Result<()> {
    let rules: Vec<Rule> = lambdas
        .iter()
        .map(|c| rule_of(c.id(), c.events(), c.filter()))
        .chain(
            queues
                .iter()
                .map(|c| rule_of(c.id(), c.events(), c.filter())),
        )
        .chain(
            topics
                .iter()
                .map(|c| rule_of(c.id(), c.events(), c.filter())),
        )
        .collect();
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            let events = a
                .events
                .iter()
                .any(|x| b.events.iter().any(|y| events_overlap(x, y)));
            let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
            let suffixes = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
            if events && prefixes && suffixes {
                anyhow::bail!(
                    "notification rules `{}` and `{}` on bucket `{bucket}` overlap (prefix `{}`/`{}`, \
                     suffix `{}`/`{}`): S3 rejects overlapping rules for the same event type. \
                     Give the triggers disjoint prefixes or suffixes",
                    a.id, b.id, a.prefix, b.prefix, a.suffix, b.suffix
                );
            }
        }
    }
    Ok(())
}

/// The `notification` kind: a bucket's Lambda triggers (one configuration per bucket).
pub(crate) struct Notification;

/// S3 checks that it may invoke the function when the configuration is written; right after
/// AddPermission it cannot yet (terraform-provider-aws issue 19088). The code, InvalidArgument,
/// also means a bad configuration: only this message is waited for.
fn is_unvalidated_destination(err: &AwsError) -> bool {
    err.is("InvalidArgument")
        && err
            .message()
            .is_some_and(|m| m.contains("Unable to validate the following destination"))
}

impl ResourceKind for Notification {
    const NAME: &'static str = "notification";
    const SERVICE: &'static str = "s3";
    const CLOUDFORMATION: Option<(&'static str, &'static str)> = None;

    /// S3 generates the notification ids: CloudFormation has no `Id` property.
    #[cfg(test)]
    fn cloudformation_comparable(want: &Desired) -> (String, super::Props) {
        let mut props = NotificationProps::of(&want.props).expect("typed");
        for entry in &mut props.entries {
            entry.id = None;
        }
        props.entries.sort_by_key(Entry::sort_key);
        (want.physical.clone(), props.into_props())
    }

    /// In CloudFormation the notification configuration is a property of its bucket.
    fn cloudformation_host(address: &Address) -> Option<Address> {
        Some(Address::new(Kind::Bucket, &address.name))
    }

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let buckets = stack
            .functions
            .values()
            .flat_map(|f| &f.triggers)
            .filter_map(|t| stack.buckets.get(&t.bucket))
            .map(|b| b.arn.clone())
            .collect();
        vec![Grant::new(
            "BucketNotifications",
            // Its own read too, though the stack's bucket grants `s3:GetBucket*`: a kind's
            // grants cover every call it sends (the contract test), whoever owns the bucket.
            &["s3:GetBucketNotification", "s3:PutBucketNotification"],
            buckets,
        )]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    async fn read(
        clients: &Clients,
        ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
    ) -> anyhow::Result<Option<Observed>> {
        read(clients, ctx, physical).await
    }

    async fn converge(
        clients: &Clients,
        _ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        // The put writes the bucket's whole configuration: nothing to send when our entries
        // are already what it holds.
        if have.is_some_and(|have| have.props == want.props) {
            return Ok(());
        }
        let entries = NotificationProps::of(&want.props)?.entries;
        until_propagated(
            "S3 to see the new invoke permission",
            on_wait,
            is_unvalidated_destination,
            || put(clients, &want.physical, &entries),
        )
        .await
    }

    async fn remove(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        _settings: &Settings,
    ) -> anyhow::Result<Removal> {
        match put(clients, physical, &[]).await {
            Ok(()) => {}
            // The bucket is gone, and its notifications with it.
            Err(err) if AwsError::find(&err).is_some_and(|e| e.is("NoSuchBucket")) => {}
            Err(err) => return Err(err),
        }
        Ok(Removal::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_patterns_overlap_by_prefix() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:*"));
        assert!(!events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*"));
    }
}
