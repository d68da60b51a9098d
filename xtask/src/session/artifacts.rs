//! Lambda bundles: built, uploaded to the state bucket under their hash, and the saved plans
//! that name them.

use anyhow::Context as _;

use crate::aws::{http_status, AwsError, Clients, SdkResultExt};
use crate::bundle::{BuildTarget, LambdaTarget};
use crate::plan::Plan;
use crate::resources::{Artifact, Artifacts};
use crate::stack::{Architecture, ResolvedStack};

use super::TargetOptions;

/// A plan saved by `plan --out FILE`, applied exactly by `deploy --plan FILE`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedPlan {
    pub plan: Plan,
    pub artifacts: Artifacts,
}

/// The plan for `plan --out FILE`, with the artifacts it was computed for.
pub(crate) fn save_plan(
    path: &std::path::Path,
    plan: &Plan,
    artifacts: &Artifacts,
) -> anyhow::Result<()> {
    let saved = SavedPlan {
        plan: plan.clone(),
        artifacts: artifacts.clone(),
    };
    std::fs::write(path, serde_json::to_vec_pretty(&saved)?)
        .with_context(|| format!("while writing {}", path.display()))
}

/// Every function's bundle, compiling in the background from the stack file alone (what to
/// build does not depend on the account) while the deployer connects and, in env `local`,
/// starts the emulator (a pip install on first use): neither waits for the other.
pub(crate) struct Prebuild(tokio::task::JoinHandle<anyhow::Result<Vec<(String, BuildTarget)>>>);

/// An account id for resolving the stack before connecting; only the build targets are
/// read from that resolution.
const ANY_ACCOUNT: &str = "000000000000";

/// Starts compiling what `bundle_and_upload` will zip.
pub(crate) fn prebuild(target: &TargetOptions) -> anyhow::Result<Prebuild> {
    let (file, settings) = super::load_stack_file(target)?;
    let region = target.region.clone().unwrap_or(settings.region);
    let stack = file.resolve_in(&target.env, ANY_ACCOUNT, Some(&region))?;
    let targets = build_targets(&stack)?;
    Ok(Prebuild(tokio::task::spawn_blocking(move || {
        for (package, target) in &targets {
            crate::bundle::compile(package, *target)?;
        }
        Ok(targets)
    })))
}

/// Builds every function's bundle (or takes what `prebuilt` compiled) and uploads it to the
/// state bucket under its hash.
pub(crate) async fn bundle_and_upload(
    clients: &Clients,
    stack: &ResolvedStack,
    bucket: &str,
    prebuilt: Option<Prebuild>,
) -> anyhow::Result<Artifacts> {
    let compiled = match prebuilt {
        Some(Prebuild(task)) => task.await.context("the build task failed")??,
        None => Vec::new(),
    };
    let mut artifacts = Artifacts::new();
    for (package, target) in build_targets(stack)? {
        let owned = package.clone();
        let done = compiled.contains(&(package.clone(), target));
        let bundle = tokio::task::spawn_blocking(move || {
            if done {
                let zip = crate::bundle::zip_path_for(&owned, target);
                let binary = crate::bundle::binary_path_for(target);
                crate::bundle::package_binary(&owned, target, &binary, &zip)
            } else {
                crate::bundle::build_for(&owned, target)
            }
        })
        .await
        .context("the bundle task failed")??;
        let artifact = Artifact {
            bucket: bucket.to_owned(),
            key: format!("artifacts/{package}/{}.zip", bundle.sha256_hex),
            code_sha256: bundle.code_sha256.clone(),
        };
        let uploaded = upload_if_missing(clients, &artifact, &bundle.zip_path).await?;
        eprintln!(
            "bundle {package} ({}): {} bytes zipped, sha256 {}{}",
            target.label(),
            bundle.zip_bytes,
            bundle.sha256_hex,
            if uploaded { "" } else { " (already uploaded)" }
        );
        artifacts.insert(package, artifact);
    }
    Ok(artifacts)
}

/// What each package is built for: Lambda's CPU as its functions declare it, or this machine
/// where an emulator runs the bootstrap as a local process (env `local`). One package, one
/// target: two functions of one package must share their architecture.
pub(crate) fn build_targets(stack: &ResolvedStack) -> anyhow::Result<Vec<(String, BuildTarget)>> {
    let mut targets: Vec<(String, BuildTarget)> = Vec::new();
    for function in stack.functions.values() {
        let architecture = match function.architecture {
            Architecture::X86_64 => LambdaTarget::X86_64,
            Architecture::Arm64 => LambdaTarget::Arm64,
        };
        let target = BuildTarget::for_function(stack.endpoint.is_some(), architecture);
        match targets.iter().find(|(p, _)| p == &function.package) {
            Some((_, existing)) if *existing != target => anyhow::bail!(
                "functions of package `{}` declare different architectures: build one package \
                 per architecture",
                function.package
            ),
            Some(_) => {}
            None => targets.push((function.package.clone(), target)),
        }
    }
    targets.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(targets)
}

/// Uploads a bundle under its content address unless it is there already. Returns whether
/// it uploaded.
pub(crate) async fn upload_if_missing(
    clients: &Clients,
    artifact: &Artifact,
    zip_path: &std::path::Path,
) -> anyhow::Result<bool> {
    let (bucket, key) = (&artifact.bucket, &artifact.key);
    match clients
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(_) => return Ok(false),
        Err(err) if http_status(&err) == Some(404) => {}
        Err(err) => {
            return Err(
                AwsError::from_sdk(err, format!("while looking for s3://{bucket}/{key}")).into(),
            )
        }
    }
    let body = aws_sdk_s3::primitives::ByteStream::from_path(zip_path)
        .await
        .with_context(|| format!("while reading {}", zip_path.display()))?;
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        // S3 refuses the upload if the file is no longer the zip that was hashed (another
        // bundle rewrote it meanwhile): the key must always name its content.
        .checksum_sha256(&artifact.code_sha256)
        .body(body)
        .customize()
        .config_override(
            aws_sdk_s3::config::Builder::default().timeout_config(crate::aws::upload_timeouts()),
        )
        .send()
        .await
        .with_aws_context(|| format!("while uploading {}", zip_path.display()))?;
    Ok(true)
}

/// A saved plan names its bundles by hash: they must still be the ones on disk (or already
/// uploaded), so that the plan is applied exactly.
pub(crate) async fn ensure_saved_artifacts(
    clients: &Clients,
    stack: &ResolvedStack,
    artifacts: &Artifacts,
) -> anyhow::Result<()> {
    let targets = build_targets(stack)?;
    for (package, artifact) in artifacts {
        let target = targets
            .iter()
            .find(|(p, _)| p == package)
            .map_or(BuildTarget::Host, |(_, t)| *t);
        let zip_path = crate::bundle::zip_path_for(package, target);
        let on_disk =
            crate::bundle::existing_for(package, target).map(|(_, code_sha256)| code_sha256);
        if on_disk.as_deref() == Some(artifact.code_sha256.as_str()) {
            upload_if_missing(clients, artifact, &zip_path).await?;
            continue;
        }
        match clients
            .s3
            .head_object()
            .bucket(&artifact.bucket)
            .key(&artifact.key)
            .send()
            .await
        {
            Ok(_) => {}
            Err(err) if http_status(&err) == Some(404) => anyhow::bail!(
                "the `{package}` bundle this plan was made with is neither on disk nor uploaded: \
                 run `cargo xtask plan --out FILE` again"
            ),
            Err(err) => {
                return Err(AwsError::from_sdk(
                    err,
                    format!(
                        "while looking for s3://{}/{}",
                        artifact.bucket, artifact.key
                    ),
                )
                .into())
            }
        }
    }
    Ok(())
}
