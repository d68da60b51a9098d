//! The one pipeline-shaped test stack shared by the deploy and real-AWS tests.

use crate::{StackFile, ACCOUNT};

/// The pipeline-shaped stack of the deploy tests (two buckets with a lifecycle rule, two
/// parameters, two users with policies, the function with its trigger and its failures
/// queue), a file of its own
/// per test, in env `local`, SDK engine.
pub struct TestStack(StackFile);

impl std::ops::Deref for TestStack {
    type Target = StackFile;

    fn deref(&self) -> &StackFile {
        &self.0
    }
}

impl TestStack {
    pub fn new(prefix: &str) -> Self {
        let stack = TestStack(StackFile::new(prefix, &[]));
        stack.write(256, "v1", "s3:GetObject", true, true);
        stack
    }

    /// The same, with every `cargo xtask` sent through `endpoint` (a fault proxy), deployed
    /// by the engine `engine_args` choose (none: the SDK engine).
    pub fn through(prefix: &str, endpoint: &str, engine_args: &'static [&'static str]) -> Self {
        let stack = TestStack(StackFile::new(prefix, engine_args).through(endpoint));
        stack.write(256, "v1", "s3:GetObject", true, true);
        stack
    }

    /// The stack under test; the arguments are the knobs the tests turn.
    pub fn write(
        &self,
        memory: u32,
        note: &str,
        user_b_action: &str,
        with_extra_param: bool,
        destination_force_destroy: bool,
    ) {
        let extra = if with_extra_param {
            "  \"/${stack}/${env}/extra\": temporary\n"
        } else {
            ""
        };
        let yaml = format!(
            r#"stack: {name}
region: {region}
environments:
  local:
    endpoint: http://127.0.0.1:4566
    buckets:
      source: {{ tls_only: false, force_destroy: true }}
      destination: {{ tls_only: false, force_destroy: {destination_force_destroy} }}
    queues:
      failures: {{ force_destroy: true }}
buckets:
  source:
    name: "${{stack}}-src-${{env}}-${{account}}"
  destination:
    name: "${{stack}}-dst-${{env}}-${{account}}"
    lifecycle:
      - {{ id: tiering, transition_days: 30, storage_class: INTELLIGENT_TIERING }}
parameters:
  "/${{stack}}/${{env}}/source-bucket": "${{buckets.source.name}}"
  "/${{stack}}/${{env}}/note": "{note}"
{extra}users:
  user-a:
    access_key: true
    allow:
      - {{ actions: [s3:ListBucket], resources: ["${{buckets.source.arn}}"] }}
      - {{ actions: [s3:GetObject, s3:PutObject], resources: ["${{buckets.source.arn}}/*"] }}
  user-b:
    access_key: false
    allow:
      - {{ actions: [{user_b_action}], resources: ["${{buckets.destination.arn}}/*"] }}
functions:
  strip:
    package: lambda
    memory: {memory}
    timeout: 30
    environment: {{ DESTINATION_BUCKET: "${{buckets.destination.name}}" }}
    on_failure: failures
    allow:
      - {{ actions: [s3:GetObject, s3:GetObjectVersion], resources: ["${{buckets.source.arn}}/*"] }}
      - {{ actions: [s3:PutObject, s3:GetObject], resources: ["${{buckets.destination.arn}}/*"] }}
    triggers:
      - {{ bucket: source, events: [created], prefix: uploads/, suffixes: [.jpg] }}
queues:
  failures: {{}}
"#,
            name = self.name,
            region = crate::REGION
        );
        std::fs::write(&self.path, yaml).expect("write the test stack");
    }

    pub fn source(&self) -> String {
        format!("{}-src-local-{ACCOUNT}", self.name)
    }

    pub fn destination(&self) -> String {
        format!("{}-dst-local-{ACCOUNT}", self.name)
    }
}
