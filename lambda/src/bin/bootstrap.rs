//! The strip Lambda's `bootstrap` (custom runtime `provided.al2023`).
//!
//! Init does only what every invocation needs: read the configuration, build the S3
//! client (once per container), log a `ready` line; then hand the event loop to
//! `lambda_runtime`. The work is in [`lambda::handler`].

use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::Provider;
use lambda::handler::{Config, Handler, Notification};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = Instant::now();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            // Failing init makes Lambda report the function as broken at once, instead of
            // accepting events it cannot handle.
            println!(
                "{}",
                serde_json::json!({ "level": "ERROR", "event": "init_failed", "error": e.to_string() })
            );
            return Err(e.into());
        }
    };
    let shared = shared_config().await;
    let mut handler = Handler::new(s3_client(&shared), config.clone());
    if config.failure_queue_url.is_some() {
        handler = handler.with_failure_queue(aws_sdk_sqs::Client::new(&shared));
    }
    println!(
        "{}",
        serde_json::json!({
            "level": "INFO",
            "event": "ready",
            "destination_bucket": config.destination_bucket,
            "failure_queue": config.failure_queue_url,
            "init_ms": started.elapsed().as_secs_f64() * 1000.0,
        })
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<Notification>| {
        handler.handle(event.payload)
    }))
    .await
}

/// The clients' configuration, from the standard chain (Lambda's environment credentials
/// and region), over rustls with ring (see `Cargo.toml`: the SDK's default HTTPS client is
/// not built in).
async fn shared_config() -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// The S3 client.
fn s3_client(shared: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    // A custom endpoint (`AWS_ENDPOINT_URL`, e.g. a local emulator) rarely resolves
    // virtual-hosted bucket names such as `bucket.localhost`: address buckets by path there.
    let path_style = shared.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
