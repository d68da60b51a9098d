//! S3 buckets: existence and ownership, region, versioning, default encryption, Block
//! Public Access, object ownership, lifecycle, tags and the TLS-only bucket policy.
//! Notifications are their own resource kind (`notification`).

use std::collections::BTreeMap;

use super::cloudformation::{always, tag_list, CheckovSkip, Companion, Synthesis};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::{default_prop_kind, ResourceKind};
use super::notification::NotificationProps;
use super::props::{changed, TypedProps};
use super::{
    policy_doc, Address, ApplyCtx, Desired, Kind, Observed, PropKind, Props, ReadCtx, Settings,
};
use crate::aws::{error_code, http_status, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::{self, ResolvedStack};

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .buckets
        .values()
        .map(|bucket| Desired {
            address: Address::new(Kind::Bucket, &bucket.logical),
            physical: bucket.name.clone(),
            props: desired_props(stack, bucket),
            depends_on: Vec::new(),
            retain: bucket.retain,
        })
        .collect()
}

/// A bucket's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BucketProps {
    pub region: String,
    /// Versioning, private access and encryption.
    #[serde(flatten)]
    pub protection: Protection,
    /// Sorted by id, as S3 keeps them.
    pub lifecycle: Vec<LifecycleRule>,
    pub tags: BTreeMap<String, String>,
    /// The bucket policy, normalised; `None` (`null`): none.
    pub policy: Option<Value>,
}

impl TypedProps for BucketProps {}

/// What keeps a bucket's data safe, the state bucket's too: versioning, default encryption,
/// Block Public Access, object ownership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Protection {
    pub versioning: bool,
    /// The default encryption's algorithm (`AES256`); `None` (`null`): none.
    pub encryption: Option<String>,
    pub public_access_block: PublicAccessBlock,
    /// The object ownership rule (`BucketOwnerEnforced`); `None` (`null`): none.
    pub ownership: Option<String>,
}

impl Protection {
    /// What every bucket of a stack gets, versioning as it says.
    pub(crate) fn wanted(versioning: bool) -> Self {
        Protection {
            versioning,
            encryption: Some("AES256".to_owned()),
            public_access_block: PublicAccessBlock::all(true),
            ownership: Some("BucketOwnerEnforced".to_owned()),
        }
    }
}

/// Block Public Access's four settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub block_public_policy: bool,
    pub ignore_public_acls: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four settings `on` (or all off).
    pub(crate) fn all(on: bool) -> Self {
        PublicAccessBlock {
            block_public_acls: on,
            block_public_policy: on,
            ignore_public_acls: on,
            restrict_public_buckets: on,
        }
    }

    /// The settings that are off, by name.
    pub(crate) fn off(&self) -> Vec<&'static str> {
        [
            ("block_public_acls", self.block_public_acls),
            ("ignore_public_acls", self.ignore_public_acls),
            ("block_public_policy", self.block_public_policy),
            ("restrict_public_buckets", self.restrict_public_buckets),
        ]
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(name, _)| name)
        .collect()
    }
}

/// One lifecycle rule (enabled, filtered by prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    pub transition_days: Option<u32>,
    pub storage_class: Option<String>,
    pub expiration_days: Option<u32>,
    pub noncurrent_expiration_days: Option<u32>,
    pub abort_incomplete_multipart_days: Option<u32>,
}

fn desired_props(stack: &ResolvedStack, bucket: &resolved::Bucket) -> Props {
    // S3 keeps lifecycle rules as a set keyed by id: sorted here as `read` sorts them, so
    // the order they are written in the stack is never a change.
    let mut lifecycle: Vec<LifecycleRule> = bucket.lifecycle.iter().map(lifecycle_rule).collect();
    lifecycle.sort_by(|a, b| a.id.cmp(&b.id));
    BucketProps {
        region: stack.region.clone(),
        protection: Protection::wanted(bucket.versioning),
        lifecycle,
        tags: stack.tags.clone(),
        policy: bucket
            .tls_only
            .then(|| policy_doc::normalize_policy(&tls_only_policy(&bucket.arn))),
    }
    .into_props()
}

fn lifecycle_rule(rule: &crate::stack::resolved::LifecycleRule) -> LifecycleRule {
    LifecycleRule {
        id: rule.id.clone(),
        prefix: rule.prefix.clone(),
        transition_days: rule.transition_days,
        storage_class: rule.storage_class.clone(),
        expiration_days: rule.expiration_days,
        noncurrent_expiration_days: rule.noncurrent_expiration_days,
        abort_incomplete_multipart_days: rule.abort_incomplete_multipart_days,
    }
}

/// Denies every request made without TLS: what AWS Security Hub (S3.5) asks for.
pub fn tls_only_policy(bucket_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, format!("{bucket_arn}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } }
        }]
    })
}

pub async fn read(
    clients: &Clients,
    _ctx: &ReadCtx,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    let s3 = &clients.s3;
    match s3.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(err) => match http_status(&err) {
            Some(404) => return Ok(None),
            Some(403) => anyhow::bail!(
                "bucket `{name}` exists but belongs to another AWS account (or these \
                 credentials may not see it): bucket names are global, pick another name \
                 in the stack file"
            ),
            _ => {
                return Err(
                    AwsError::from_sdk(err, format!("while reading bucket `{name}`")).into(),
                )
            }
        },
    }
    let (location, versioning, encryption, pab, ownership, lifecycle, tags, policy) = tokio::join!(
        s3.get_bucket_location().bucket(name).send(),
        s3.get_bucket_versioning().bucket(name).send(),
        s3.get_bucket_encryption().bucket(name).send(),
        s3.get_public_access_block().bucket(name).send(),
        s3.get_bucket_ownership_controls().bucket(name).send(),
        s3.get_bucket_lifecycle_configuration().bucket(name).send(),
        s3.get_bucket_tagging().bucket(name).send(),
        s3.get_bucket_policy().bucket(name).send(),
    );
    let ctx = |what: &str| format!("while reading the {what} of bucket `{name}`");

    let location = location.with_aws_context(|| ctx("location"))?;
    // S3 reports us-east-1 as an empty location constraint.
    let region = location
        .location_constraint()
        .map(|c| c.as_str().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "us-east-1".to_owned());

    let versioning = versioning.with_aws_context(|| ctx("versioning"))?;
    let enabled = versioning.status().map(|s| s.as_str()) == Some("Enabled");

    let encryption = match encryption {
        Ok(out) => out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_owned()),
        Err(err) if is_missing(error_code(&err)) => None,
        Err(err) => return Err(AwsError::from_sdk(err, ctx("encryption")).into()),
    };

    let pab = match pab {
        Ok(out) => out
            .public_access_block_configuration()
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }),
        Err(err) if is_missing(error_code(&err)) => None,
        Err(err) => return Err(AwsError::from_sdk(err, ctx("public access block")).into()),
    };

    let ownership = match ownership {
        Ok(out) => out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_owned()),
        Err(err) if is_missing(error_code(&err)) => None,
        Err(err) => return Err(AwsError::from_sdk(err, ctx("ownership controls")).into()),
    };

    let lifecycle = match lifecycle {
        Ok(out) => {
            let mut rules: Vec<LifecycleRule> = out.rules().iter().map(observed_rule).collect();
            rules.sort_by(|a, b| a.id.cmp(&b.id));
            rules
        }
        Err(err) if is_missing(error_code(&err)) => Vec::new(),
        Err(err) => return Err(AwsError::from_sdk(err, ctx("lifecycle")).into()),
    };

    let tags = match tags {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        Err(err) if is_missing(error_code(&err)) => BTreeMap::new(),
        Err(err) => return Err(AwsError::from_sdk(err, ctx("tags")).into()),
    };

    let policy = match policy {
        Ok(out) => match out.policy() {
            Some(text) => Some(policy_doc::normalize_policy(
                &policy_doc::parse_policy(text).map_err(|e| {
                    anyhow::anyhow!("{}: unreadable policy document: {e}", ctx("policy"))
                })?,
            )),
            None => None,
        },
        Err(err) if is_missing(error_code(&err)) => None,
        Err(err) => return Err(AwsError::from_sdk(err, ctx("policy")).into()),
    };

    Ok(Some(Observed {
        physical: name.to_owned(),
        props: BucketProps {
            region,
            protection: Protection {
                versioning: enabled,
                encryption,
                public_access_block: pab.unwrap_or(PublicAccessBlock::all(false)),
                ownership,
            },
            lifecycle,
            tags,
            policy,
        }
        .into_props(),
    }))
}

/// The "not configured" answers of the bucket sub-resource getters.
fn is_missing(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ServerSideEncryptionConfigurationNotFoundError"
                | "NoSuchPublicAccessBlockConfiguration"
                | "OwnershipControlsNotFoundError"
                | "NoSuchLifecycleConfiguration"
                | "NoSuchTagSet"
                | "NoSuchTagSetError"
                | "NoSuchBucketPolicy"
        )
    )
}

fn observed_rule(rule: &aws_sdk_s3::types::LifecycleRule) -> LifecycleRule {
    let prefix = rule
        .filter()
        .and_then(|f| f.prefix())
        .or(
            #[allow(deprecated)]
            rule.prefix(),
        )
        .unwrap_or_default();
    let transition = rule.transitions().first();
    let days = |d: Option<i32>| d.and_then(|d| u32::try_from(d).ok());
    LifecycleRule {
        id: rule.id().unwrap_or_default().to_owned(),
        prefix: prefix.to_owned(),
        transition_days: days(transition.and_then(|t| t.days())),
        storage_class: transition
            .and_then(|t| t.storage_class())
            .map(|c| c.as_str().to_owned()),
        expiration_days: days(rule.expiration().and_then(|e| e.days())),
        noncurrent_expiration_days: days(
            rule.noncurrent_version_expiration()
                .and_then(|e| e.noncurrent_days()),
        ),
        abort_incomplete_multipart_days: days(
            rule.abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation()),
        ),
    }
}

/// What `delete` did with a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Deleted {
        versions_removed: usize,
    },
    /// Not empty and not `force_destroy`: kept, with what it holds.
    KeptNotEmpty {
        objects: usize,
        versions: usize,
    },
}

pub async fn create(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let region = BucketProps::of(&want.props)?.region;
    let mut request = clients.s3.create_bucket().bucket(name);
    // us-east-1 is the one region that must not be named as a location constraint.
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("BucketAlreadyOwnedByYou") => {
            adopt(clients, ctx, name).await?;
        }
        Err(err) if error_code(&err) == Some("BucketAlreadyExists") => anyhow::bail!(
            "bucket name `{name}` is taken by another AWS account (bucket names are global): \
             change `buckets.{}.name` in the stack file",
            want.address.name
        ),
        Err(err) => {
            return Err(AwsError::from_sdk(err, format!("while creating bucket `{name}`")).into())
        }
    }
    // S3 answers NoSuchBucket for a while after CreateBucket (terraform-provider-aws PR 10863
    // retries it for two minutes): every setting is sent again until the bucket is seen.
    until_propagated(
        "S3 to see the new bucket",
        on_wait,
        |e| e.is("NoSuchBucket"),
        || update(clients, want, None),
    )
    .await
}

/// A bucket of ours that the state does not know (e.g. created by an interrupted deploy):
/// take it over only if its tags say it belongs to this stack and environment.
async fn adopt(clients: &Clients, ctx: &ReadCtx, name: &str) -> anyhow::Result<()> {
    let tags = current_tags(clients, name).await?;
    check_ours(name, &tags, &ctx.stack, &ctx.env)
}

/// Every tag of the bucket, the stack's and others'.
async fn current_tags(
    clients: &Clients,
    name: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    match clients.s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()),
        Err(err) if is_missing(error_code(&err)) => Ok(Default::default()),
        Err(err) => Err(AwsError::from_sdk(
            err,
            format!("while reading the tags of bucket `{name}`"),
        )
        .into()),
    }
}

/// Bucket names are global: an existing bucket is taken over only when its tags say it
/// belongs to this stack and environment (checked before planning, and again when a create
/// finds the bucket already there). Its region is a property of its own (a bucket in
/// another region is replaced), so no region tag is asked for.
fn check_ours(
    name: &str,
    tags: &std::collections::BTreeMap<String, String>,
    stack: &str,
    env: &str,
) -> anyhow::Result<()> {
    super::tags::check_ours("bucket", name, tags, stack, env, None)
}

/// Writes the protection settings that differ from `have` (all when `have` is `None`): the
/// stack's buckets and the state bucket alike.
pub(crate) async fn protect(
    clients: &Clients,
    name: &str,
    want: &Protection,
    have: Option<&Protection>,
) -> anyhow::Result<()> {
    use aws_sdk_s3::types as t;
    let s3 = &clients.s3;
    let fail = |what: &str| format!("while setting the {what} of bucket `{name}`");
    // Ownership and public access first: later writes (the policy) must meet them.
    if changed(&want.ownership, have.map(|h| &h.ownership)) {
        s3.put_bucket_ownership_controls()
            .bucket(name)
            .ownership_controls(
                t::OwnershipControls::builder()
                    .rules(
                        t::OwnershipControlsRule::builder()
                            .object_ownership(t::ObjectOwnership::BucketOwnerEnforced)
                            .build()?,
                    )
                    .build()?,
            )
            .send()
            .await
            .with_aws_context(|| fail("ownership controls"))?;
    }
    if changed(
        &want.public_access_block,
        have.map(|h| &h.public_access_block),
    ) {
        s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                t::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .block_public_policy(true)
                    .ignore_public_acls(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .with_aws_context(|| fail("public access block"))?;
    }
    if changed(&want.encryption, have.map(|h| &h.encryption)) {
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                t::ServerSideEncryptionConfiguration::builder()
                    .rules(
                        t::ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                t::ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(t::ServerSideEncryption::Aes256)
                                    .build()?,
                            )
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .with_aws_context(|| fail("encryption"))?;
    }
    if changed(&want.versioning, have.map(|h| &h.versioning)) {
        let status = if want.versioning {
            t::BucketVersioningStatus::Enabled
        } else {
            t::BucketVersioningStatus::Suspended
        };
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(t::VersioningConfiguration::builder().status(status).build())
            .send()
            .await
            .with_aws_context(|| fail("versioning"))?;
    }
    Ok(())
}

/// Writes every property that differs from `have` (everything when `have` is `None`).
/// `have` holds only the tags the stack manages (`tags::managed_view`).
pub async fn update(
    clients: &Clients,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    use aws_sdk_s3::types as t;
    let s3 = &clients.s3;
    let name = want.physical.as_str();
    let fail = |what: &str| format!("while setting the {what} of bucket `{name}`");
    let props = BucketProps::of(&want.props)?;
    let observed = have.map(|h| BucketProps::of(&h.props)).transpose()?;
    let observed = observed.as_ref();
    protect(
        clients,
        name,
        &props.protection,
        observed.map(|h| &h.protection),
    )
    .await?;
    let tags = super::tags::changes(&want.props, have.map(|h| &h.props));
    if !tags.set.is_empty() || !tags.remove.is_empty() {
        // PutBucketTagging replaces the whole set: the tags others put on the bucket are
        // read and written back, only the stack's own keys change.
        let mut all = current_tags(clients, name).await?;
        for key in &tags.remove {
            all.remove(key);
        }
        all.extend(tags.set);
        if all.is_empty() {
            s3.delete_bucket_tagging()
                .bucket(name)
                .send()
                .await
                .with_aws_context(|| fail("tags"))?;
        } else {
            let all = all
                .into_iter()
                .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            s3.put_bucket_tagging()
                .bucket(name)
                .tagging(t::Tagging::builder().set_tag_set(Some(all)).build()?)
                .send()
                .await
                .with_aws_context(|| fail("tags"))?;
        }
    }
    if changed(&props.lifecycle, observed.map(|h| &h.lifecycle)) {
        let rules = &props.lifecycle;
        if rules.is_empty() {
            s3.delete_bucket_lifecycle()
                .bucket(name)
                .send()
                .await
                .with_aws_context(|| fail("lifecycle"))?;
        } else {
            let rules = rules
                .iter()
                .map(lifecycle_rule_sdk)
                .collect::<anyhow::Result<Vec<_>>>()?;
            s3.put_bucket_lifecycle_configuration()
                .bucket(name)
                .lifecycle_configuration(
                    t::BucketLifecycleConfiguration::builder()
                        .set_rules(Some(rules))
                        .build()?,
                )
                .send()
                .await
                .with_aws_context(|| fail("lifecycle"))?;
        }
    }
    if changed(&props.policy, observed.map(|h| &h.policy)) {
        match &props.policy {
            None => {
                s3.delete_bucket_policy()
                    .bucket(name)
                    .send()
                    .await
                    .with_aws_context(|| fail("policy"))?;
            }
            Some(policy) => {
                s3.put_bucket_policy()
                    .bucket(name)
                    .policy(policy.to_string())
                    .send()
                    .await
                    .with_aws_context(|| fail("policy"))?;
            }
        }
    }
    Ok(())
}

fn lifecycle_rule_sdk(rule: &LifecycleRule) -> anyhow::Result<aws_sdk_s3::types::LifecycleRule> {
    use aws_sdk_s3::types as t;
    let days = |d: Option<u32>| d.and_then(|d| i32::try_from(d).ok());
    let mut builder = t::LifecycleRule::builder()
        .id(&rule.id)
        .status(t::ExpirationStatus::Enabled)
        .filter(
            t::LifecycleRuleFilter::builder()
                .prefix(&rule.prefix)
                .build(),
        );
    if let (Some(days), Some(class)) = (days(rule.transition_days), rule.storage_class.as_deref()) {
        builder = builder.transitions(
            t::Transition::builder()
                .days(days)
                .storage_class(t::TransitionStorageClass::from(class))
                .build(),
        );
    }
    if let Some(days) = days(rule.expiration_days) {
        builder = builder.expiration(t::LifecycleExpiration::builder().days(days).build());
    }
    if let Some(days) = days(rule.noncurrent_expiration_days) {
        builder = builder.noncurrent_version_expiration(
            t::NoncurrentVersionExpiration::builder()
                .noncurrent_days(days)
                .build(),
        );
    }
    if let Some(days) = days(rule.abort_incomplete_multipart_days) {
        builder = builder.abort_incomplete_multipart_upload(
            t::AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days)
                .build(),
        );
    }
    Ok(builder.build()?)
}

/// Object and version counts (versions include delete markers), for `destroy`'s report.
/// What HeadObject tells of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectHead {
    pub size: i64,
    /// Without quotes, as S3 puts it in events.
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub key: String,
    /// Without quotes.
    pub etag: Option<String>,
    pub size: i64,
    /// Last modified, in milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// The objects of bucket `name` under `prefix`, in key order (S3 lists by UTF-8 bytes), a
/// page at a time: memory holds one page whatever the bucket's size.
pub(crate) struct Listing {
    pages: aws_smithy_async::future::pagination_stream::PaginationStream<
        Result<
            aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
            aws_sdk_s3::error::SdkError<
                aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
                aws_sdk_s3::config::http::HttpResponse,
            >,
        >,
    >,
    page: std::collections::VecDeque<Listed>,
    name: String,
}

impl Listing {
    pub(crate) fn new(clients: &Clients, name: &str, prefix: &str) -> Self {
        Listing {
            pages: clients
                .s3
                .list_objects_v2()
                .bucket(name)
                .prefix(prefix)
                .into_paginator()
                .send(),
            page: std::collections::VecDeque::new(),
            name: name.to_owned(),
        }
    }

    /// The next object without taking it.
    pub(crate) async fn peek(&mut self) -> anyhow::Result<Option<&Listed>> {
        while self.page.is_empty() {
            let Some(page) = self.pages.next().await else {
                return Ok(None);
            };
            let page = page.with_aws_context(|| format!("while listing bucket {}", self.name))?;
            self.page.extend(page.contents().iter().filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_owned(),
                    etag: o.e_tag().map(|e| e.trim_matches('"').to_owned()),
                    size: o.size().unwrap_or_default(),
                    modified_ms: o.last_modified().map_or(0, |t| {
                        t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
                    }),
                })
            }));
        }
        Ok(self.page.front())
    }

    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Listed>> {
        self.peek().await?;
        Ok(self.page.pop_front())
    }
}

/// Writes the file at `path` to `key` of bucket `name` (one PutObject: up to 5 GB); the
/// ETag S3 gave it.
pub(crate) async fn put_file(
    clients: &Clients,
    name: &str,
    key: &str,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let out = clients
        .s3
        .put_object()
        .bucket(name)
        .key(key)
        .content_type("text/csv")
        .body(body)
        .send()
        .await
        .with_aws_context(|| format!("while writing s3://{name}/{key}"))?;
    out.e_tag()
        .map(|e| e.trim_matches('"').to_owned())
        .ok_or_else(|| anyhow::anyhow!("S3 wrote s3://{name}/{key} but gave no ETag"))
}

/// The source ETag a stripped copy records (`x-amz-meta-source-etag`, the handler's stamp).
pub(crate) async fn source_etag_of_copy(
    clients: &Clients,
    name: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    match clients
        .s3
        .head_object()
        .bucket(name)
        .key(key)
        .send()
        .await
        .with_aws_context(|| format!("while looking at s3://{name}/{key}"))
    {
        Ok(head) => Ok(head
            .metadata
            .and_then(|m| m.get("source-etag").cloned())
            .map(|e| e.trim_matches('"').to_owned())),
        Err(err) if err.is("NotFound") || err.is("NoSuchKey") => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The current version of object `key` of bucket `name`; `None` when there is none.
pub(crate) async fn head_object(
    clients: &Clients,
    name: &str,
    key: &str,
) -> anyhow::Result<Option<ObjectHead>> {
    match clients
        .s3
        .head_object()
        .bucket(name)
        .key(key)
        .send()
        .await
        .with_aws_context(|| format!("while looking at s3://{name}/{key}"))
    {
        Ok(head) => Ok(Some(ObjectHead {
            size: head.content_length.unwrap_or_default(),
            etag: head.e_tag.map(|e| e.trim_matches('"').to_owned()),
            version_id: head.version_id,
        })),
        Err(err) if err.is("NotFound") || err.is("NoSuchKey") => Ok(None),
        Err(err) => Err(err.into()),
    }
}

pub async fn contents(clients: &Clients, name: &str) -> anyhow::Result<(usize, usize)> {
    let mut objects = 0;
    let mut versions = 0;
    // ListObjectVersions pages by (key marker, version marker); the SDK has no paginator.
    let mut markers: (Option<String>, Option<String>) = (None, None);
    loop {
        let page = clients
            .s3
            .list_object_versions()
            .bucket(name)
            .set_key_marker(markers.0.take())
            .set_version_id_marker(markers.1.take())
            .send()
            .await
            .with_aws_context(|| format!("while listing the objects of bucket `{name}`"))?;
        objects += page
            .versions()
            .iter()
            .filter(|v| v.is_latest() == Some(true))
            .count();
        versions += page.versions().len() + page.delete_markers().len();
        if page.is_truncated() != Some(true) {
            break;
        }
        markers = (
            page.next_key_marker().map(str::to_owned),
            page.next_version_id_marker().map(str::to_owned),
        );
        if markers.0.is_none() {
            break;
        }
    }
    Ok((objects, versions))
}

/// Deletes the bucket. A non-empty bucket is emptied first only when `force_destroy`;
/// otherwise it is kept and reported.
pub async fn delete(clients: &Clients, name: &str, force_destroy: bool) -> anyhow::Result<Removal> {
    let (objects, versions) = match contents(clients, name).await {
        Ok(counts) => counts,
        // Gone already (deleted by hand, or by a run cut short after its delete): done.
        Err(err) if AwsError::find(&err).is_some_and(|e| e.is("NoSuchBucket")) => {
            return Ok(Removal::Deleted {
                versions_removed: 0,
            })
        }
        Err(err) => return Err(err),
    };
    if versions > 0 && !force_destroy {
        return Ok(Removal::KeptNotEmpty { objects, versions });
    }
    let removed = empty(clients, name).await?;
    match clients.s3.delete_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("NoSuchBucket") => {}
        Err(err) => {
            return Err(AwsError::from_sdk(err, format!("while deleting bucket `{name}`")).into())
        }
    }
    Ok(Removal::Deleted {
        versions_removed: removed,
    })
}

/// Deletes every object version and delete marker of the bucket; returns how many.
pub async fn empty(clients: &Clients, name: &str) -> anyhow::Result<usize> {
    delete_versions(clients, name, "").await
}

/// Deletes every object version and delete marker under `prefix` (a versioned bucket keeps
/// a plainly deleted object); returns how many.
pub async fn delete_versions(clients: &Clients, name: &str, prefix: &str) -> anyhow::Result<usize> {
    use aws_sdk_s3::types as t;
    let mut removed = 0;
    loop {
        // Each page is deleted before the next listing, which then starts from the top.
        let page = clients
            .s3
            .list_object_versions()
            .bucket(name)
            .prefix(prefix)
            .max_keys(1000)
            .send()
            .await
            .with_aws_context(|| format!("while listing the objects of bucket `{name}`"))?;
        let ids: Vec<t::ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                t::ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            break;
        }
        let count = ids.len();
        let out = clients
            .s3
            .delete_objects()
            .bucket(name)
            .delete(
                t::Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .with_aws_context(|| format!("while emptying bucket `{name}`"))?;
        // Per-object failures come back in a successful answer; left unread, the next listing
        // would find the same objects again, for ever.
        if let Some(failed) = out.errors().first() {
            anyhow::bail!(
                "while emptying bucket `{name}`: {} object versions could not be deleted, e.g. \
                 `{}`: {} {}",
                out.errors().len(),
                failed.key().unwrap_or_default(),
                failed.code().unwrap_or_default(),
                failed.message().unwrap_or_default()
            );
        }
        removed += count;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline declares the destination's rules tiering first; S3 (and `read`) list
    /// them by id. Both sides must agree or every plan would show a lifecycle change.
    #[test]
    fn lifecycle_rules_are_compared_in_id_order() {
        let stack = &crate::stack::pipeline_in_every_env()[0];
        let declared: Vec<&str> = stack.buckets["destination"]
            .lifecycle
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            declared,
            ["intelligent-tiering", "abort-incomplete-uploads"]
        );
        let props = BucketProps::of(&desired_props(stack, &stack.buckets["destination"])).unwrap();
        let ids: Vec<&str> = props.lifecycle.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["abort-incomplete-uploads", "intelligent-tiering"]);
    }
}

/// The `bucket` kind.
/// What the deployer does to a bucket itself (the stack's and the state bucket): create,
/// read and set every setting, list its versions to empty it, delete it. Reads are
/// wildcards (`s3:GetBucket*`: versioning, public access block, ownership, tagging, policy,
/// location…) on the same resources, which keeps the policy under IAM's size limit; every
/// write is named.
pub(crate) const BUCKET_ACTIONS: &[&str] = &[
    "s3:CreateBucket",
    "s3:ListBucket*",
    "s3:GetBucket*",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketTagging",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
];

pub(crate) struct Bucket;

/// What the state keeps for a bucket's delete.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct DeleteSettings {
    /// Empty it (every object version) before deleting it.
    #[serde(default)]
    force_destroy: bool,
}

/// Whether a bucket's recorded settings say to empty it before deleting it.
pub(crate) fn force_destroy(settings: &Settings) -> bool {
    serde_json::from_value::<DeleteSettings>(serde_json::Value::Object(settings.clone()))
        .is_ok_and(|s| s.force_destroy)
}

/// The bucket's `AWS::S3::Bucket` properties, its notification configuration included.
fn cloudformation_bucket(
    want: &Desired,
    props: &BucketProps,
    notification: Option<&NotificationProps>,
) -> Value {
    let protection = &props.protection;
    let block = &protection.public_access_block;
    let mut properties = json!({
        "BucketName": want.physical,
        "VersioningConfiguration": {
            "Status": if protection.versioning { "Enabled" } else { "Suspended" }
        },
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{
                "ServerSideEncryptionByDefault": { "SSEAlgorithm": protection.encryption }
            }]
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": block.block_public_acls,
            "BlockPublicPolicy": block.block_public_policy,
            "IgnorePublicAcls": block.ignore_public_acls,
            "RestrictPublicBuckets": block.restrict_public_buckets,
        },
        "OwnershipControls": { "Rules": [{ "ObjectOwnership": protection.ownership }] },
        "Tags": tag_list(&props.tags),
    });
    let rules: Vec<Value> = props
        .lifecycle
        .iter()
        .map(lifecycle_rule_cloudformation)
        .collect();
    if !rules.is_empty() {
        properties["LifecycleConfiguration"] = json!({ "Rules": rules });
    }
    if let Some(notification) = notification {
        // One configuration per event: CloudFormation's `Event` is a single event type. The
        // entries' ids are not CloudFormation properties (S3 generates ids).
        let configurations: Vec<Value> = notification
            .entries
            .iter()
            .flat_map(|entry| {
                entry.events.iter().map(move |event| {
                    let mut configuration =
                        json!({ "Event": event, "Function": entry.function_arn });
                    let rules: Vec<Value> = [("prefix", &entry.prefix), ("suffix", &entry.suffix)]
                        .into_iter()
                        .filter(|(_, value)| !value.is_empty())
                        .map(|(name, value)| json!({ "Name": name, "Value": value }))
                        .collect();
                    if !rules.is_empty() {
                        configuration["Filter"] = json!({ "S3Key": { "Rules": rules } });
                    }
                    configuration
                })
            })
            .collect();
        properties["NotificationConfiguration"] = json!({ "LambdaConfigurations": configurations });
    }
    properties
}

fn lifecycle_rule_cloudformation(rule: &LifecycleRule) -> Value {
    let mut out = json!({ "Id": rule.id, "Status": "Enabled" });
    if !rule.prefix.is_empty() {
        out["Prefix"] = json!(rule.prefix);
    }
    if let (Some(days), Some(class)) = (rule.transition_days, &rule.storage_class) {
        out["Transitions"] = json!([{ "StorageClass": class, "TransitionInDays": days }]);
    }
    if let Some(days) = rule.expiration_days {
        out["ExpirationInDays"] = json!(days);
    }
    if let Some(days) = rule.noncurrent_expiration_days {
        out["NoncurrentVersionExpiration"] = json!({ "NoncurrentDays": days });
    }
    if let Some(days) = rule.abort_incomplete_multipart_days {
        out["AbortIncompleteMultipartUpload"] = json!({ "DaysAfterInitiation": days });
    }
    out
}

/// The SDK engine's address of a bucket's policy, a resource of its own in CloudFormation
/// (`bucket.<name>.policy`).
pub(crate) fn policy_address(bucket: &str) -> Address {
    Address::new(Kind::Bucket, format!("{bucket}.policy"))
}

impl ResourceKind for Bucket {
    const NAME: &'static str = "bucket";
    const SERVICE: &'static str = "s3";
    // The trigger names the bucket.
    const DELETED_AFTER: &'static [Kind] = &[Kind::Notification];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::S3::Bucket", "Bucket"));

    fn access(_address: &Address, props: &super::Props) -> Vec<super::access::Access> {
        props.get("policy").map_or_else(Vec::new, |doc| {
            super::access::statements("bucket policy", doc, None, None)
        })
    }

    const CLOUDFORMATION_COMPANIONS: &'static [&'static str] = &["Policy"];

    const CHECKOV_SKIPS: &'static [CheckovSkip] = &[CheckovSkip {
        id: "CKV_AWS_18",
        reason: "S3 server access logs need a log bucket of their own (which would fail this \
                 check in turn) and are delivered best effort. Who read or wrote which object, \
                 with the caller's identity, is what CloudTrail data events record: turn them \
                 on for these buckets in the account's trail.",
        applies: always,
    }];

    /// The bucket, its policy (a resource of its own there) and its notification
    /// configuration (a property of it there), read back.
    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let name = p["BucketName"].as_str().unwrap_or_default().to_owned();
        let block = &p["PublicAccessBlockConfiguration"];
        let policy = resource
            .all
            .values()
            .find(|r| {
                r["Type"] == "AWS::S3::BucketPolicy" && r["Properties"]["Bucket"] == json!(name)
            })
            .map(|r| r["Properties"]["PolicyDocument"].clone());
        let lifecycle: Vec<LifecycleRule> = p["LifecycleConfiguration"]["Rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let days = |v: &Value| v.as_u64().and_then(|d| u32::try_from(d).ok());
                LifecycleRule {
                    id: r["Id"].as_str().unwrap_or_default().to_owned(),
                    prefix: r["Prefix"].as_str().unwrap_or("").to_owned(),
                    transition_days: days(&r["Transitions"][0]["TransitionInDays"]),
                    storage_class: r["Transitions"][0]["StorageClass"]
                        .as_str()
                        .map(str::to_owned),
                    expiration_days: days(&r["ExpirationInDays"]),
                    noncurrent_expiration_days: days(
                        &r["NoncurrentVersionExpiration"]["NoncurrentDays"],
                    ),
                    abort_incomplete_multipart_days: days(
                        &r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
                    ),
                }
            })
            .collect();
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let props = BucketProps {
            region: resource.stack.region.clone(),
            protection: Protection {
                versioning: p["VersioningConfiguration"]["Status"] == "Enabled",
                encryption: text(
                    &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
                        ["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
                ),
                public_access_block: PublicAccessBlock {
                    block_public_acls: block["BlockPublicAcls"] == json!(true),
                    block_public_policy: block["BlockPublicPolicy"] == json!(true),
                    ignore_public_acls: block["IgnorePublicAcls"] == json!(true),
                    restrict_public_buckets: block["RestrictPublicBuckets"] == json!(true),
                },
                ownership: text(&p["OwnershipControls"]["Rules"][0]["ObjectOwnership"]),
            },
            lifecycle,
            tags: super::cloudformation::tag_map(p),
            policy,
        }
        .into_props();
        let mut read = vec![(resource.address.clone(), name.clone(), props)];
        if let Some(configurations) =
            p["NotificationConfiguration"]["LambdaConfigurations"].as_array()
        {
            // One CloudFormation configuration per event; the SDK engine's entry holds the
            // events of one (function, prefix, suffix).
            let mut entries: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
            for c in configurations {
                let rule = |n: &str| {
                    c["Filter"]["S3Key"]["Rules"]
                        .as_array()
                        .and_then(|rules| rules.iter().find(|r| r["Name"] == n))
                        .and_then(|r| r["Value"].as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                entries
                    .entry((
                        c["Function"].as_str().unwrap_or_default().to_owned(),
                        rule("prefix"),
                        rule("suffix"),
                    ))
                    .or_default()
                    .push(c["Event"].as_str().unwrap_or_default().to_owned());
            }
            let entries: Vec<super::notification::Entry> = entries
                .into_iter()
                .map(|((function_arn, prefix, suffix), mut events)| {
                    events.sort();
                    super::notification::Entry {
                        id: None,
                        function_arn,
                        events,
                        prefix,
                        suffix,
                    }
                })
                .collect();
            read.push((
                Address::new(Kind::Notification, &resource.address.name),
                name,
                NotificationProps { entries }.into_props(),
            ));
        }
        read
    }

    fn cloudformation_properties(want: &Desired, synthesis: &mut Synthesis<'_>) -> Option<Value> {
        // The notification configuration is a property of the bucket in CloudFormation.
        let props = BucketProps::of(&want.props).ok()?;
        let notification = synthesis.declared(Kind::Notification, &want.address.name);
        if let Some(notification) = notification {
            // The permissions S3 checks when the configuration is written.
            synthesis.extra_dependencies.extend(
                notification
                    .depends_on
                    .iter()
                    .filter(|a| a.kind != Kind::Bucket)
                    .cloned(),
            );
        }
        // The TLS-only policy: part of the bucket here, its own resource there.
        if let Some(policy) = &props.policy {
            synthesis.companions.push(Companion {
                suffix: "Policy",
                resource_type: "AWS::S3::BucketPolicy",
                address: policy_address(&want.address.name),
                physical: want.physical.clone(),
                properties: json!({
                    "Bucket": want.physical,
                    "PolicyDocument": policy,
                }),
            });
        }
        let notification = notification
            .map(|n| NotificationProps::of(&n.props))
            .transpose()
            .ok()?;
        Some(cloudformation_bucket(want, &props, notification.as_ref()))
    }

    const TAGGED: bool = true;

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let buckets = || stack.buckets.values();
        vec![
            Grant::new(
                "StackBuckets",
                BUCKET_ACTIONS,
                buckets().map(|b| b.arn.clone()).collect(),
            ),
            Grant::new(
                "DeleteStackBuckets",
                &["s3:DeleteBucket"],
                buckets().map(|b| b.arn.clone()).collect(),
            ),
            // `destroy` empties a `force_destroy` bucket: every version and delete marker.
            Grant::new(
                "EmptyForceDestroyBuckets",
                &["s3:DeleteObject", "s3:DeleteObjectVersion"],
                buckets()
                    .filter(|b| b.force_destroy)
                    .map(|b| format!("{}/*", b.arn))
                    .collect(),
            ),
        ]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &super::Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    fn prop_kind(prop: &str) -> PropKind {
        match prop {
            // A bucket cannot move: a new region is a new bucket.
            "region" => PropKind::ForcesReplacement,
            _ => default_prop_kind(prop),
        }
    }

    fn settings(stack: &ResolvedStack, address: &Address) -> Settings {
        let settings = DeleteSettings {
            force_destroy: stack
                .buckets
                .get(&address.name)
                .is_some_and(|b| b.force_destroy),
        };
        match serde_json::to_value(settings) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => Settings::new(),
        }
    }

    fn check_adoption(
        stack: &ResolvedStack,
        want: &Desired,
        have: &Observed,
    ) -> anyhow::Result<()> {
        check_ours(
            &want.physical,
            &BucketProps::of(&have.props)?.tags,
            &stack.stack,
            &stack.env,
        )
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
        ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        match have {
            None => create(clients, &ctx.read, want, on_wait).await,
            Some(_) => update(clients, want, have).await,
        }
    }

    async fn remove(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        settings: &Settings,
    ) -> anyhow::Result<super::Removal> {
        Ok(
            match delete(clients, physical, force_destroy(settings)).await? {
                Removal::Deleted { .. } => super::Removal::Deleted,
                Removal::KeptNotEmpty { objects, versions } => super::Removal::KeptNotEmpty {
                    holds: format!("{objects} objects, {versions} versions"),
                },
            },
        )
    }
}
