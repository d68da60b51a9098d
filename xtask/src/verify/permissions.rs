//! The permission checks, made with `user-a`'s and `user-b`'s own access keys: what the
//! design promises them, each expected denial a real `AccessDenied` from S3.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    /// Refused by the service with `AccessDenied`.
    Denied,
}

pub(super) async fn permissions(deployed: &Deployed<'_>) -> Vec<Row> {
    // Something for the users to read, written with the deployer's credentials so that reads
    // are tested whatever the users may write.
    let s3 = &deployed.clients.s3;
    let (source_probe, destination_probe) = tokio::join!(
        put(s3, &deployed.source.name, &deployed.keys.probe, b"probe"),
        put(
            s3,
            &deployed.destination.name,
            &deployed.keys.probe,
            b"probe"
        ),
    );
    if let Err(err) = source_probe.and(destination_probe) {
        return vec![Row::fail(
            "permissions: test objects",
            format!("could not write the objects the users read: {err}"),
        )];
    }
    let (uploader, reader) = tokio::join!(
        user_clients(deployed, UPLOADER),
        user_clients(deployed, READER)
    );
    let mut rows = Vec::new();
    match uploader {
        Ok(clients) => rows.extend(uploader_rows(deployed, &clients.s3).await),
        Err(err) => rows.push(Row::fail(format!("{UPLOADER}: access key"), err)),
    }
    match reader {
        Ok(clients) => rows.extend(reader_rows(deployed, &clients.s3).await),
        Err(err) => rows.push(Row::fail(format!("{READER}: access key"), err)),
    }
    rows
}

/// `user-a`: list, read and write A; no write into B.
async fn uploader_rows(deployed: &Deployed<'_>, s3: &aws_sdk_s3::Client) -> Vec<Row> {
    let (a, b) = (deployed.source, deployed.destination);
    let keys = &deployed.keys;
    let list = as_new_key(|| {
        s3.list_objects_v2()
            .bucket(&a.name)
            .prefix(&keys.run)
            .max_keys(1)
            .send()
    })
    .await;
    let read = as_new_key(|| s3.get_object().bucket(&a.name).key(&keys.probe).send()).await;
    let write = as_new_key(|| {
        s3.put_object()
            .bucket(&a.name)
            .key(&keys.uploader_write)
            .body(ByteStream::from_static(b"written by the uploader"))
            .send()
    })
    .await;
    let write_b = as_new_key(|| {
        s3.put_object()
            .bucket(&b.name)
            .key(&keys.uploader_write)
            .body(ByteStream::from_static(b"written by the uploader"))
            .send()
    })
    .await;
    vec![
        judge(
            format!("{UPLOADER}: list {}", a.logical),
            Expect::Allowed,
            list,
        ),
        judge(
            format!("{UPLOADER}: read {}", a.logical),
            Expect::Allowed,
            read,
        ),
        judge(
            format!("{UPLOADER}: write {}", a.logical),
            Expect::Allowed,
            write,
        ),
        judge(
            format!("{UPLOADER}: cannot write {}", b.logical),
            Expect::Denied,
            write_b,
        ),
    ]
}

/// `user-b`: list and read B; no write into B, no read of A.
async fn reader_rows(deployed: &Deployed<'_>, s3: &aws_sdk_s3::Client) -> Vec<Row> {
    let (a, b) = (deployed.source, deployed.destination);
    let keys = &deployed.keys;
    let list = as_new_key(|| {
        s3.list_objects_v2()
            .bucket(&b.name)
            .prefix(&keys.run)
            .max_keys(1)
            .send()
    })
    .await;
    let read = as_new_key(|| s3.get_object().bucket(&b.name).key(&keys.probe).send()).await;
    let write = as_new_key(|| {
        s3.put_object()
            .bucket(&b.name)
            .key(&keys.reader_write)
            .body(ByteStream::from_static(b"written by the reader"))
            .send()
    })
    .await;
    let read_a = as_new_key(|| s3.get_object().bucket(&a.name).key(&keys.probe).send()).await;
    vec![
        judge(
            format!("{READER}: list {}", b.logical),
            Expect::Allowed,
            list,
        ),
        judge(
            format!("{READER}: read {}", b.logical),
            Expect::Allowed,
            read,
        ),
        judge(
            format!("{READER}: cannot write {}", b.logical),
            Expect::Denied,
            write,
        ),
        judge(
            format!("{READER}: cannot read {}", a.logical),
            Expect::Denied,
            read_a,
        ),
    ]
}

/// Clients acting with the user's own access key, read from its SSM parameters.
async fn user_clients(deployed: &Deployed<'_>, logical: &str) -> Result<Clients, String> {
    let user = deployed
        .stack
        .users
        .get(logical)
        .filter(|u| u.access_key)
        .ok_or_else(|| format!("the stack declares no user `{logical}` with `access_key: true`"))?;
    let id_parameter = resources::user::key_id_parameter(&deployed.ctx, &user.logical);
    let secret_parameter = resources::user::secret_parameter(&deployed.ctx, &user.logical);
    let (id, secret) = tokio::join!(
        ssm_value(deployed.clients, &id_parameter, false),
        ssm_value(deployed.clients, &secret_parameter, true),
    );
    Ok(deployed.clients.with_access_key(&id?, &secret?))
}

/// Runs `call` again while the service does not know the (new) access key yet: IAM keys take
/// seconds to reach S3 on AWS. Every other answer, denials included, is returned at once.
async fn as_new_key<T, E, F, Fut>(mut call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata,
{
    let deadline = Instant::now() + NEW_KEY_GRACE;
    loop {
        match call().await {
            Err(err)
                if matches!(
                    error_code(&err),
                    Some("InvalidAccessKeyId" | "SignatureDoesNotMatch")
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

fn judge<T, E>(check: String, expect: Expect, result: Result<T, SdkError<E, HttpResponse>>) -> Row
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (expect, result) {
        (Expect::Allowed, Ok(_)) => Row::pass(check, "allowed"),
        (Expect::Allowed, Err(err)) => Row::fail(check, format!("refused: {}", describe(&err))),
        (Expect::Denied, Ok(_)) => Row::fail(check, "allowed, but must be refused"),
        (Expect::Denied, Err(err)) if error_code(&err) == Some("AccessDenied") => Row::pass(
            check,
            format!(
                "AccessDenied (HTTP {})",
                http_status(&err).map_or("?".to_owned(), |s| s.to_string())
            ),
        ),
        (Expect::Denied, Err(err)) => Row::fail(
            check,
            format!("expected AccessDenied, got {}", describe(&err)),
        ),
    }
}

pub(super) async fn ssm_value(
    clients: &Clients,
    name: &str,
    decrypt: bool,
) -> Result<String, String> {
    let out = clients
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(decrypt)
        .send()
        .await
        .map_err(|err| format!("SSM parameter `{name}`: {}", describe(&err)))?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| format!("SSM parameter `{name}` has no value"))
}

pub(super) async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &'static [u8],
) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|err| format!("PutObject {bucket}/{key}: {}", describe(&err)))
}
