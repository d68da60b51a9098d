//! Whole-file tests of the stack module: each rule with its message and position, overlays
//! and interpolation as seen in a resolved stack, and the real `stacks/exif-pipeline.yaml`.

use super::*;

const FILE: &str = "stacks/demo.yaml";
/// Lines 1–4 of most test files; resources start on line 5.
const HEAD: &str = "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\n";

fn analyse_text(text: &str) -> (Option<StackFile>, Vec<Diagnostic>) {
    analyse(Path::new(FILE), Source::new(FILE, text))
}

/// Every diagnostic as `line:col: severity: message [label]`.
fn check(text: &str) -> Vec<String> {
    analyse_text(text)
        .1
        .iter()
        .map(|d| {
            let at = d
                .span
                .map(|s| format!("{}:{}: ", s.line, s.col))
                .unwrap_or_default();
            let sev = if d.is_error() { "error" } else { "warning" };
            let label = d
                .label
                .as_ref()
                .map(|l| format!(" [{l}]"))
                .unwrap_or_default();
            format!("{at}{sev}: {}{label}", d.message)
        })
        .collect()
}

#[track_caller]
fn assert_has(text: &str, expected: &str) {
    let found = check(text);
    assert!(
        found.iter().any(|d| d == expected),
        "expected `{expected}` among:\n{}",
        found.join("\n")
    );
}

#[track_caller]
fn assert_clean(text: &str) {
    let found = check(text);
    assert!(
        found.is_empty(),
        "expected no diagnostics, got:\n{}",
        found.join("\n")
    );
}

fn diagnostic(text: &str, message_start: &str) -> Diagnostic {
    let (_, diagnostics) = analyse_text(text);
    diagnostics
        .iter()
        .find(|d| d.message.starts_with(message_start))
        .cloned()
        .unwrap_or_else(|| panic!("no diagnostic starting `{message_start}` in {diagnostics:#?}"))
}

fn resolve_text(text: &str, env: &str) -> (ResolvedStack, DependencyGraph) {
    let (stack, diagnostics) = analyse_text(text);
    let stack = stack.unwrap_or_else(|| panic!("invalid: {diagnostics:#?}"));
    stack
        .resolve_with_dependencies(env, PLACEHOLDER_ACCOUNT, None)
        .unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------- parsing

#[test]
fn yaml_syntax_error_has_position() {
    assert_has(
        "stack: demo\nregion: [eu-west-2\nenvironments: {}\n",
        "3:13: error: did not find expected ',' or ']', while parsing a flow sequence at line 2 column 9",
    );
}

#[test]
fn a_second_yaml_document_is_refused_where_it_starts() {
    let text = format!("{HEAD}---\nstack: other\n");
    assert_has(&text, "5:1: error: a second YAML document starts here");
    // A `---` opening the only document is one document.
    assert_clean(&format!("---\n{HEAD}"));
}

#[test]
fn text_after_the_root_mapping_ends_is_refused_where_it_starts() {
    // An indented first key makes the next, unindented one fall outside the mapping: libyaml
    // calls that "more than one document" and names no place.
    assert_eq!(
        check(&format!("  {HEAD}")),
        ["2:7: error: invalid YAML: did not find expected <document start>"]
    );
}

#[test]
fn a_file_that_is_not_utf8_names_the_byte_its_offset_line_and_column() {
    let dir = std::env::temp_dir().join(format!("stripstack-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.yaml");
    // "caf\xE9" in Latin-1 on line 2, after `region: ` and three letters.
    std::fs::write(&path, b"stack: latin1\nregion: caf\xE9\n").unwrap();
    let err = load(&path).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.ends_with(
            "latin1.yaml:2:12: the stack file is not UTF-8 text: byte 0xE9 at offset 25 is not \
             valid UTF-8 (save the file as UTF-8)"
        ),
        "{message}"
    );
    // Said once, also through the error chain.
    assert_eq!(message.matches("UTF-8 text").count(), 1, "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_key() {
    let text = format!("{HEAD}buckets:\n  source: {{}}\n  source: {{}}\n");
    assert_has(&text, "7:3: error: duplicate key `source`");
    let d = diagnostic(&text, "duplicate key");
    assert_eq!(d.notes, vec!["first defined at line 6, column 3"]);
}

#[test]
fn unknown_field_suggests_the_right_one() {
    let text = format!("{HEAD}buckets:\n  source:\n    versionin: false\n");
    assert_has(
        &text,
        "7:5: error: unknown field `versionin` [did you mean `versioning`?]",
    );
}

#[test]
fn every_unknown_field_is_reported_in_one_run() {
    let text = format!("{HEAD}buckets:\n  source: {{ versionin: false, retian: true }}\nfunctions:\n  f: {{ package: lambda, timout: 3 }}\n");
    assert_has(
        &text,
        "6:13: error: unknown field `versionin` [did you mean `versioning`?]",
    );
    assert_has(
        &text,
        "6:31: error: unknown field `retian` [did you mean `retain`?]",
    );
    assert_has(
        &text,
        "8:25: error: unknown field `timout` [did you mean `timeout`?]",
    );
}

#[test]
fn unknown_field_in_an_overlay_is_placed_there_and_names_the_environment() {
    let text = "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\n  prod:\n    buckets:\n      source: { retian: true }\n    endpont: http://x\nbuckets:\n  source: {}\n";
    assert_has(
        text,
        "7:17: error: unknown field `retian` [did you mean `retain`?]",
    );
    assert_has(
        text,
        "8:5: error: unknown field `endpont` [did you mean `endpoint`?]",
    );
    let d = diagnostic(text, "unknown field `retian`");
    assert_eq!(
        d.notes.last().map(String::as_str),
        Some("in environment `prod`")
    );
}

#[test]
fn unknown_value_of_an_enum() {
    let text = format!("{HEAD}buckets:\n  source: {{}}\nfunctions:\n  strip:\n    package: lambda\n    triggers:\n      - {{ bucket: source, events: [create] }}\n");
    assert_has(
        &text,
        "11:36: error: unknown value `create` [did you mean `created`?]",
    );
}

#[test]
fn wrong_type() {
    let text = format!("{HEAD}functions:\n  strip:\n    package: lambda\n    memory: big\n");
    assert_has(
        &text,
        "8:13: error: functions.strip.memory: invalid type: string \"big\", expected u32",
    );
}

#[test]
fn missing_field() {
    let text = format!("{HEAD}functions:\n  strip:\n    memory: 512\n");
    assert_has(
        &text,
        "6:3: error: missing field `package` in `functions.strip`",
    );
}

#[test]
fn empty_file_and_no_environments() {
    assert_has("# nothing yet\n", "error: the stack file is empty");
    assert_has(
        "stack: demo\nregion: eu-west-2\nenvironments: {}\n",
        "3:1: error: no environments declared",
    );
}

// ---------------------------------------------------------------- rules

#[test]
fn bucket_naming() {
    let text = format!("{HEAD}buckets:\n  source:\n    name: Demo-Source\n");
    assert_has(
        &text,
        "7:11: error: invalid S3 bucket name `Demo-Source`: it contains the uppercase letter `D`; bucket names are lowercase",
    );
    let text = format!("{HEAD}buckets:\n  source:\n    name: \"${{stack}}-source-${{env}}-\"\n");
    assert_has(
        &text,
        "7:11: error: invalid S3 bucket name `demo-source-dev-`: it must begin and end with a letter or digit",
    );
    let text = format!("{HEAD}buckets:\n  source:\n    name: \"${{stack}}.source.${{env}}\"\n");
    assert_has(
        &text,
        "7:11: warning: bucket name `demo.source.dev` contains dots",
    );
}

#[test]
fn bucket_name_is_checked_after_interpolation_with_a_12_digit_account() {
    // `demo-` + 41 + `-dev-` + 12 digits = 63 characters: the longest valid name.
    let long = "x".repeat(41);
    let text = format!(
        "{HEAD}buckets:\n  source:\n    name: \"${{stack}}-{long}-${{env}}-${{account}}\"\n"
    );
    assert_clean(&text);
    let text = format!(
        "{HEAD}buckets:\n  source:\n    name: \"${{stack}}-{long}x-${{env}}-${{account}}\"\n"
    );
    assert_has(
        &text,
        &format!("7:11: error: invalid S3 bucket name `demo-{long}x-dev-123456789012`: it is 64 characters long; S3 allows 3 to 63"),
    );
    let d = diagnostic(&text, "invalid S3 bucket name");
    assert_eq!(
        d.notes,
        vec!["checked after interpolation, with a 12-digit account id and region eu-west-2"]
    );
}

#[test]
fn iam_action_syntax() {
    let text = format!(
        "{HEAD}users:\n  user-a:\n    allow:\n      - {{ actions: [s3GetObject, S3:GetObject, s3:HeadObject], resources: ['*'] }}\n"
    );
    assert_has(
        &text,
        "8:21: error: IAM action `s3GetObject` must be written `service:Action` (e.g. `s3:GetObject`)",
    );
    assert_has(
        &text,
        "8:34: error: invalid service prefix in IAM action `S3:GetObject`: lowercase letters, digits and hyphens only",
    );
    assert_has(
        &text,
        "8:48: error: `s3:HeadObject` is an S3 API operation, not an IAM action: it would grant nothing",
    );
}

#[test]
fn unknown_s3_action_is_a_warning_with_a_suggestion() {
    let text = format!(
        "{HEAD}users:\n  user-a:\n    allow:\n      - {{ actions: s3:GetObjet, resources: '*' }}\n"
    );
    assert_has(
        &text,
        "8:20: warning: unknown S3 action `s3:GetObjet` [did you mean `s3:GetObject`?]",
    );
    // Warnings do not fail the load.
    assert!(analyse_text(&text).0.is_some());
}

#[test]
fn unknown_reference() {
    let text = format!(
        "{HEAD}buckets:\n  source: {{}}\nusers:\n  user-a:\n    allow:\n      - {{ actions: [s3:GetObject], resources: [\"${{buckets.sorce.arn}}/*\"] }}\n"
    );
    assert_has(
        &text,
        "10:49: error: unknown reference `${buckets.sorce.arn}` [did you mean `${buckets.source.arn}`?]",
    );
}

#[test]
fn iam_policy_variables_need_the_escape() {
    let text = format!("{HEAD}users:\n  user-a:\n    allow:\n      - {{ actions: [s3:GetObject], resources: [\"arn:aws:s3:::b/${{aws:username}}/*\"] }}\n");
    let d = diagnostic(&text, "unknown reference `${aws:username}`");
    assert_eq!(
        d.span,
        Some(Span {
            line: 8,
            col: 64,
            len: 15
        })
    );
    assert_eq!(
        d.help.as_deref(),
        Some("IAM policy variables are written `$${aws:username}`: `$${` keeps a literal `${`")
    );
    let escaped = text.replace("${aws:username}", "$${aws:username}");
    let (resolved, _) = resolve_text(&escaped, "dev");
    assert_eq!(
        resolved.users["user-a"].allow[0].resources,
        vec!["arn:aws:s3:::b/${aws:username}/*"]
    );
}

#[test]
fn unterminated_reference() {
    let text = format!("{HEAD}tags:\n  owner: \"team-${{env\"\n");
    assert_has(
        &text,
        "6:16: error: unterminated `${`: a reference ends with `}`",
    );
}

#[test]
fn duplicate_physical_names() {
    let text = format!("{HEAD}buckets:\n  a: {{ name: same-name }}\n  b: {{ name: same-name }}\n");
    assert_has(
        &text,
        "7:14: error: duplicate S3 bucket name `same-name` [also the name of bucket `a`]",
    );

    let text = format!("{HEAD}parameters:\n  \"/x/${{env}}\": a\n  \"/x/dev\": b\n");
    assert_has(
        &text,
        "7:3: error: duplicate SSM parameter name `/x/dev` [`/x/${env}` has the same name]",
    );

    let text = format!("{HEAD}parameters:\n  /demo/dev/users/u/secret-access-key: x\nusers:\n  u: {{ access_key: true }}\n");
    assert_has(
        &text,
        "6:3: error: duplicate SSM parameter name `/demo/dev/users/u/secret-access-key` [user `u` keeps its secret access key there]",
    );
}

#[test]
fn physical_names_clash_across_environments() {
    // IAM is global to an account: env `dev` + user `a-x` and env `dev-a` + user `x` are one user.
    let text = "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\n  dev-a: {}\nusers:\n  a-x: {}\n  x: {}\n";
    assert_has(
        text,
        "8:3: error: IAM user name `demo-dev-a-x` is used by environments `dev` and `dev-a`",
    );
    // A bucket name without `${env}` is the same in every environment.
    let text = "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\n  prod: {}\nbuckets:\n  logs: { name: \"demo-logs-${account}\" }\n";
    assert_has(
        text,
        "7:17: error: S3 bucket name `demo-logs-123456789012` is used by environments `dev` and `prod`",
    );
}

#[test]
fn ssm_parameter_names() {
    let text = format!("{HEAD}parameters:\n  /aws/thing: a\n  demo/x: b\n  \"/demo/a b\": c\n");
    assert_has(
        &text,
        "6:3: error: invalid SSM parameter name `/aws/thing`: names beginning with `aws` or `ssm` are reserved",
    );
    assert_has(
        &text,
        "7:3: error: invalid SSM parameter name `demo/x`: a hierarchical name must start with `/`",
    );
    assert_has(
        &text,
        "8:3: error: invalid SSM parameter name `/demo/a b`: it contains ` `; only letters, digits, `_`, `.`, `-` and `/` are allowed",
    );
    let deep = "/a".repeat(16);
    assert_has(
        &format!("{HEAD}parameters:\n  {deep}: x\n"),
        &format!("6:3: error: invalid SSM parameter name `{deep}`: it has 16 levels of hierarchy; SSM allows 15"),
    );
}

#[test]
fn trigger_on_a_bucket_the_function_writes_is_an_infinite_loop() {
    let text = format!(
        "{HEAD}buckets:\n  photos: {{}}\nfunctions:\n  strip:\n    package: lambda\n    allow:\n      - {{ actions: [s3:Put*], resources: [\"${{buckets.photos.arn}}/*\"] }}\n    triggers:\n      - {{ bucket: photos, prefix: uploads/, suffixes: [.jpg, .JPG] }}\n"
    );
    assert_has(
        &text,
        "13:19: error: infinite invocation loop: `strip` is triggered by bucket `photos` and may write to it [every object `strip` writes here would invoke it again]",
    );
    let d = diagnostic(&text, "infinite invocation loop");
    assert_eq!(
        d.notes,
        vec!["`s3:Put*` on `${buckets.photos.arn}/*` is granted at line 11, column 43"]
    );
    // Writing under another prefix of the same bucket does not trigger it.
    assert_clean(&text.replace(
        "\"${buckets.photos.arn}/*\"",
        "\"${buckets.photos.arn}/clean/*\"",
    ));
}

#[test]
fn suffix_filters_are_case_sensitive() {
    let text = format!(
        "{HEAD}buckets:\n  source: {{}}\nfunctions:\n  strip:\n    package: lambda\n    triggers:\n      - {{ bucket: source, suffixes: [.jpg, .jpeg, .JPEG] }}\n"
    );
    assert_has(
        &text,
        "11:38: warning: S3 suffix filters are case-sensitive: keys ending in `.JPG` would not trigger `strip`",
    );
    assert_eq!(check(&text).len(), 1, "{:?}", check(&text));
}

#[test]
fn retained_and_force_destroyed() {
    let text = "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\n  prod:\n    buckets:\n      source: { retain: true }\nbuckets:\n  source: { force_destroy: true }\n";
    assert_has(
        text,
        "9:28: error: bucket `source` is both retained and force-destroyed [`retain` keeps it on destroy; `force_destroy` would empty and delete it]",
    );
    let d = diagnostic(text, "bucket `source` is both");
    assert_eq!(
        d.notes,
        vec![
            "`retain: true` is set at line 7, column 25",
            "in environment `prod`"
        ]
    );
}

#[test]
fn tls_only_bucket_behind_a_plain_http_endpoint() {
    let text = "stack: demo\nregion: eu-west-2\nenvironments:\n  local:\n    endpoint: http://127.0.0.1:4566\nbuckets:\n  source: {}\n";
    assert_has(
        text,
        "7:3: error: bucket `source` is TLS-only but this environment's endpoint is plain HTTP",
    );
    assert_clean(&text.replace(
        "endpoint: http://127.0.0.1:4566",
        "endpoint: http://127.0.0.1:4566\n    buckets: { source: { tls_only: false } }",
    ));
}

#[test]
fn memory_and_timeout_ranges() {
    let text = format!(
        "{HEAD}functions:\n  strip:\n    package: lambda\n    memory: 64\n    timeout: 901\n"
    );
    assert_has(
        &text,
        "8:13: error: memory 64 MB is out of range: Lambda allows 128 to 10240",
    );
    assert_has(
        &text,
        "9:14: error: timeout 901 s is out of range: Lambda allows 1 to 900",
    );
}

#[test]
fn trigger_on_an_undeclared_bucket() {
    let text = format!("{HEAD}buckets:\n  source: {{}}\nfunctions:\n  strip:\n    package: lambda\n    triggers:\n      - bucket: sourc\n");
    assert_has(
        &text,
        "11:17: error: trigger on undeclared bucket `sourc` [did you mean `source`?]",
    );
}

#[test]
fn logical_names() {
    let text =
        format!("{HEAD}users:\n  User_A: {{}}\nfunctions:\n  strip-: {{ package: lambda }}\n");
    assert_has(
        &text,
        "6:3: error: invalid user name `User_A`: it must start with a lowercase letter",
    );
    assert_has(
        &text,
        "8:3: error: invalid function name `strip-`: it must not end with a hyphen",
    );
    let text = "stack: demo\nregion: eu-west-2\nenvironments:\n  Dev: {}\n";
    assert_has(
        text,
        "4:3: error: invalid environment name `Dev`: it must start with a lowercase letter",
    );
}

#[test]
fn iam_name_length_limits() {
    // demo-dev- is 9 characters: a 56-character logical name makes a 65-character user.
    let user = "u".repeat(56);
    let text = format!("{HEAD}users:\n  {user}: {{}}\n");
    assert_has(
        &text,
        &format!(
            "6:3: error: IAM user name `demo-dev-{user}` is 65 characters long; AWS allows 64"
        ),
    );
    // The role adds `-role`: 51 + 9 + 5 = 65.
    let function = "f".repeat(51);
    let text = format!("{HEAD}functions:\n  {function}: {{ package: lambda }}\n");
    assert_has(
        &text,
        &format!("6:3: error: IAM role name `demo-dev-{function}-role` is 65 characters long; AWS allows 64"),
    );
}

#[test]
fn dependency_cycles_are_rejected() {
    let text = format!(
        "{HEAD}users:\n  u:\n    allow:\n      - {{ actions: [lambda:InvokeFunction], resources: [\"${{functions.f.arn}}\"] }}\nfunctions:\n  f:\n    package: lambda\n    environment: {{ USER: \"${{users.u.name}}\" }}\n"
    );
    assert_has(
        &text,
        "8:58: error: dependency cycle: user.u → function.f → user.u",
    );
    let d = diagnostic(&text, "dependency cycle");
    assert_eq!(
        d.notes,
        vec![
            "user.u refers to function.f with `${functions.f.arn}` (line 8, column 58)",
            "function.f refers to user.u with `${users.u.name}` (line 12, column 27)",
        ]
    );
    let text = format!("{HEAD}buckets:\n  a: {{ name: \"${{buckets.a.name}}-x\" }}\n");
    assert_has(
        &text,
        "6:15: error: the name of bucket `a` refers to itself",
    );
    // Referring to oneself elsewhere is fine: names are known before anything exists.
    let text = format!("{HEAD}users:\n  u:\n    allow:\n      - {{ actions: [iam:ChangePassword], resources: [\"${{users.u.arn}}\"] }}\n");
    assert_clean(&text);
}

#[test]
fn overlapping_triggers_are_rejected() {
    let text = format!(
        "{HEAD}buckets:\n  source: {{}}\nfunctions:\n  a:\n    package: lambda\n    triggers: [{{ bucket: source, prefix: uploads/, suffixes: [.jpg, .JPG] }}]\n  b:\n    package: lambda\n    triggers: [{{ bucket: source, prefix: uploads/photos/, suffixes: [.jpg, .JPG] }}]\n"
    );
    assert_has(
        &text,
        "13:16: error: S3 trigger on bucket `source` overlaps trigger 1 of `a`",
    );
}

#[test]
fn function_environment_variables() {
    let text = format!("{HEAD}functions:\n  strip:\n    package: lambda\n    environment:\n      AWS_REGION: x\n      ok_name: y\n");
    assert_has(
        &text,
        "9:7: error: environment variable `AWS_REGION` is reserved: Lambda sets it itself",
    );
}

#[test]
fn resources_must_be_arns() {
    let text = format!("{HEAD}buckets:\n  b: {{}}\nusers:\n  u:\n    allow:\n      - {{ actions: [s3:ListBucket], resources: [\"${{buckets.b.name}}\"] }}\n");
    assert_has(
        &text,
        "10:49: error: resource `${buckets.b.name}` is not an ARN or `*`",
    );
    let d = diagnostic(&text, "resource `${buckets.b.name}`");
    assert_eq!(
        d.help.as_deref(),
        Some("use `${buckets.b.arn}` (and `/*` for its objects)")
    );
}

#[test]
fn object_actions_on_a_bucket_arn_grant_nothing() {
    let text = format!("{HEAD}buckets:\n  b: {{}}\nusers:\n  u:\n    allow:\n      - {{ actions: [s3:GetObject], resources: [\"${{buckets.b.arn}}\"] }}\n");
    assert_has(
        &text,
        "10:21: warning: `s3:GetObject` applies to objects, but this statement names none",
    );
}

#[test]
fn log_actions_on_a_bare_log_group_arn_grant_nothing() {
    let bare = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/f";
    let text = format!("{HEAD}users:\n  u:\n    allow:\n      - {{ actions: [logs:CreateLogGroup, logs:TagResource], resources: [\"{bare}\"] }}\n      - {{ actions: [logs:PutLogEvents], resources: [\"{bare}:*\", \"{bare}:log-stream:s\"] }}\n      - {{ actions: [logs:TagResource], resources: [\"{bare}\"] }}\n");
    assert_has(
        &text,
        "8:73: warning: CloudWatch Logs matches `logs:CreateLogGroup` against the log group's ARN with `:*` at the end; this one grants nothing for it",
    );
    let d = diagnostic(&text, "CloudWatch Logs matches");
    assert_eq!(d.help, Some(format!("write `{bare}:*`")));
    assert_eq!(
        check(&text).len(),
        1,
        "the `:*`, stream and tagging forms are right: {:?}",
        check(&text)
    );
}

#[test]
fn reserved_concurrency_warns_where_it_stops_or_fails_a_deploy() {
    let with = |value: &str| {
        format!("{HEAD}functions:\n  f:\n    package: lambda\n    reserved_concurrency: {value}\n")
    };
    assert_has(
        &with("0"),
        "8:27: warning: `f` reserves 0 concurrent executions: it never runs",
    );
    assert_has(
        &with("1000"),
        "8:27: warning: reserving 1000 concurrent executions needs an account limit above the default",
    );
    assert!(check(&with("50")).is_empty(), "{:?}", check(&with("50")));
    let (stack, _) = resolve_text(&with("50"), "dev");
    assert_eq!(stack.functions["f"].reserved_concurrency, Some(50));
    let (stack, _) = resolve_text(
        &format!("{HEAD}functions:\n  f: {{ package: lambda }}\n"),
        "dev",
    );
    assert_eq!(stack.functions["f"].reserved_concurrency, None);
}

#[test]
fn log_retention_is_one_cloudwatch_accepts() {
    let with = |days: &str| {
        format!("{HEAD}functions:\n  f:\n    package: lambda\n    log_retention_days: {days}\n")
    };
    assert_has(
        &with("31"),
        "8:25: error: CloudWatch Logs cannot keep logs for 31 days",
    );
    let d = diagnostic(&with("31"), "CloudWatch Logs cannot keep");
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.ends_with("the nearest is 30")),
        "{:?}",
        d.help
    );
    assert!(check(&with("14")).is_empty(), "{:?}", check(&with("14")));
    let (stack, _) = resolve_text(
        &format!("{HEAD}functions:\n  f: {{ package: lambda }}\n"),
        "dev",
    );
    assert_eq!(stack.functions["f"].log_retention_days, 30, "the default");
    assert_eq!(stack.functions["f"].log_group, "/aws/lambda/demo-dev-f");
}

#[test]
fn on_failure_names_a_queue_and_gives_the_function_its_url_and_permission() {
    let text = format!(
        "{HEAD}queues:\n  failures: {{}}\nfunctions:\n  f:\n    package: lambda\n    on_failure: failures\n"
    );
    assert!(check(&text).is_empty(), "{:?}", check(&text));
    let (stack, _) = resolve_text(&text, "dev");
    let queue = &stack.queues["failures"];
    assert_eq!(queue.name, "demo-dev-failures");
    assert_eq!(queue.retention_days, 14);
    assert!(!queue.force_destroy);
    let f = &stack.functions["f"];
    assert_eq!(f.environment["FAILURE_QUEUE_URL"], queue.url);
    assert!(queue.url.ends_with("/demo-dev-failures"), "{}", queue.url);
    assert!(
        f.allow
            .iter()
            .any(|s| s.actions == ["sqs:SendMessage"] && s.resources == [queue.arn.clone()]),
        "{:?}",
        f.allow
    );
    let invoke = f.async_invoke.as_ref().expect("async settings");
    assert_eq!(invoke.on_failure.as_deref(), Some("failures"));
    assert_eq!(invoke.retry_attempts, None);

    let typo = format!(
        "{HEAD}queues:\n  failures: {{}}\nfunctions:\n  f:\n    package: lambda\n    on_failure: failure\n"
    );
    assert_has(
        &typo,
        "10:17: error: `on_failure` names undeclared queue `failure` [did you mean `failures`?]",
    );
    let d = diagnostic(&typo, "`on_failure` names undeclared queue");
    assert_eq!(d.label.as_deref(), Some("did you mean `failures`?"));

    let declared = format!(
        "{HEAD}queues:\n  q: {{}}\nfunctions:\n  f:\n    package: lambda\n    on_failure: q\n    environment: {{ FAILURE_QUEUE_URL: x }}\n"
    );
    assert_has(
        &declared,
        "11:20: error: `FAILURE_QUEUE_URL` is set by stripstack from `on_failure`",
    );
}

#[test]
fn asynchronous_retries_and_queues_stay_within_aws_bounds() {
    let with = |settings: &str| {
        format!("{HEAD}queues:\n  q: {{ retention_days: 15 }}\nfunctions:\n  f:\n    package: lambda\n{settings}")
    };
    let text = with("    on_failure: q\n    retry_attempts: 3\n    max_event_age_seconds: 30\n");
    assert_has(
        &text,
        "6:24: error: SQS cannot keep messages for 15 days: 1 to 14",
    );
    assert_has(
        &text,
        "11:21: error: Lambda retries an asynchronous invocation at most 2 times, not 3",
    );
    assert_has(
        &text,
        "12:28: error: `max_event_age_seconds` 30 is out of range: Lambda allows 60 to 21600 (6 hours)",
    );
    assert_has(
        &with("    retry_attempts: 0\n"),
        "8:3: warning: `f` sets how its asynchronous invocations are retried but has no `on_failure`",
    );
}

#[test]
fn renditions_are_checked_and_handed_to_the_function() {
    let with = |renditions: &str| {
        format!(
            "{HEAD}buckets:\n  src: {{}}\n  dst: {{}}\nfunctions:\n  f:\n    package: lambda\n    environment: {{ DESTINATION_BUCKET: \"${{buckets.dst.name}}\" }}\n    triggers: [{{ bucket: src, prefix: uploads/ }}]\n    renditions:\n{renditions}"
        )
    };
    let good = with("      - { name: thumb, max_edge: 320, prefix: thumbs/ }\n      - { name: web, max_edge: 1280, quality: 85, prefix: web/ }\n");
    assert!(check(&good).is_empty(), "{:?}", check(&good));
    let (stack, _) = resolve_text(&good, "dev");
    let f = &stack.functions["f"];
    assert_eq!(f.renditions.len(), 2);
    assert_eq!(f.renditions[0].quality, 80, "the default quality");
    assert_eq!(
        f.environment["RENDITIONS"],
        r#"[{"name":"thumb","max_edge":320,"quality":80,"prefix":"thumbs/"},{"name":"web","max_edge":1280,"quality":85,"prefix":"web/"}]"#
    );
    let (none, _) = resolve_text(
        &format!("{HEAD}functions:\n  f: {{ package: lambda }}\n"),
        "dev",
    );
    assert!(!none.functions["f"].environment.contains_key("RENDITIONS"));

    let bad = with("      - { name: thumb, max_edge: 8, quality: 0, prefix: thumbs }\n      - { name: thumb, max_edge: 320, prefix: thumbs/ }\n      - { name: again, max_edge: 320, prefix: thumbs/ }\n");
    let rendered = check(&bad);
    for expected in [
        "`max_edge` 8 is out of range: 16 to 8192 pixels",
        "JPEG quality 0 is out of range: 1 to 100",
        "rendition prefix `thumbs` must be a folder ending with `/`",
        "two renditions are named `thumb`",
        "two renditions write under `thumbs/`",
    ] {
        assert!(
            rendered.iter().any(|line| line.contains(expected)),
            "{expected} in {rendered:#?}"
        );
    }

    // A trigger on the destination bucket under the rendition's prefix would take the
    // rendition for an upload.
    let looping = format!(
        "{HEAD}buckets:\n  src: {{}}\n  dst: {{}}\nfunctions:\n  f:\n    package: lambda\n    environment: {{ DESTINATION_BUCKET: \"${{buckets.dst.name}}\" }}\n    triggers: [{{ bucket: src, prefix: uploads/ }}]\n    renditions: [{{ name: thumb, max_edge: 320, prefix: thumbs/ }}]\n  g:\n    package: lambda\n    environment: {{ DESTINATION_BUCKET: \"${{buckets.src.name}}\" }}\n    triggers: [{{ bucket: dst, prefix: thumbs/ }}]\n"
    );
    assert!(
        check(&looping).iter().any(|line| line.contains(
            "renditions under `thumbs/` of the destination bucket would invoke `g` again"
        )),
        "{:#?}",
        check(&looping)
    );
}

#[test]
fn lifecycle_rules() {
    let text = format!(
        "{HEAD}buckets:\n  b:\n    versioning: false\n    lifecycle:\n      - {{ id: t, transition_days: 10, storage_class: STANDARD_IA }}\n      - {{ id: u, transition_days: 30, storage_class: INTELIGENT_TIERING }}\n      - {{ id: v, noncurrent_expiration_days: 30 }}\n      - {{ id: v, expiration_days: 1, transition_days: 5, storage_class: GLACIER }}\n      - {{ id: w, abort_incomplete_multipart_days: 0 }}\n      - {{ id: x, expiration_days: 3000000000 }}\n"
    );
    assert_has(
        &text,
        "9:35: error: S3 moves objects to STANDARD_IA after 30 days at the earliest",
    );
    assert_has(
        &text,
        "10:54: error: unknown storage class `INTELIGENT_TIERING` [did you mean `INTELLIGENT_TIERING`?]",
    );
    assert_has(
        &text,
        "11:46: warning: bucket `b` is not versioned: `noncurrent_expiration_days` has no effect",
    );
    assert_has(&text, "12:15: error: duplicate lifecycle rule id `v`");
    assert_has(
        &text,
        "12:35: error: lifecycle rule `v` expires objects (day 1) before it transitions them (day 5)",
    );
    assert_has(
        &text,
        "13:51: error: `abort_incomplete_multipart_days` must be at least 1",
    );
    assert_has(
        &text,
        "14:35: error: `expiration_days` must be at most 2147483647",
    );
}

#[test]
fn environment_settings_rules() {
    let text = "stack: demo\nregion: eu-west2\nenvironments:\n  local:\n    endpoint: http://localhost:4566\n  other:\n    endpoint: 127.0.0.1:4566\n";
    assert_has(
        text,
        "2:9: error: `eu-west2` is not an AWS region name (like `eu-west-2`)",
    );
    assert_has(
        text,
        "5:15: warning: endpoint `http://localhost:4566` uses `localhost`",
    );
    assert_has(
        text,
        "7:15: error: invalid endpoint: `127.0.0.1:4566` must start with http:// or https://",
    );
}

#[test]
fn reserved_tags() {
    let text = format!("{HEAD}tags:\n  env: x\n  aws:owner: y\n");
    assert_has(
        &text,
        "6:3: error: tag `env` is set by stripstack on every resource",
    );
    assert_has(
        &text,
        "7:3: error: tag `aws:owner`: the `aws:` prefix is reserved",
    );
}

#[test]
fn stack_name_should_match_the_file() {
    let text = "stack: other\nregion: eu-west-2\nenvironments:\n  dev: {}\n";
    assert_has(
        text,
        "1:8: warning: stack `other` is defined in `demo.yaml`",
    );
}

// ---------------------------------------------------------------- overlays and interpolation

const OVERLAYS: &str = "\
stack: demo
region: eu-west-2
tags: { team: photos, cost: shared }
environments:
  dev: {}
  prod:
    region: us-east-1
    tags: { cost: prod }
    buckets:
      scratch: null
      source: { retain: true }
    functions:
      strip:
        memory: 1024
        environment: { MODE: strict }
        triggers:
          - { bucket: source, prefix: incoming/ }
buckets:
  source: { versioning: true }
  scratch: {}
parameters:
  \"/${stack}/${env}/source\": { value: \"${buckets.source.name}\", secure: true, description: \"in ${region}\" }
functions:
  strip:
    package: lambda
    environment: { BUCKET: \"${buckets.source.name}\", MODE: lenient }
    allow:
      - { actions: [s3:GetObject], resources: [\"${buckets.source.arn}/*\"] }
    triggers:
      - { bucket: source, prefix: uploads/, suffixes: [.jpg, .JPG] }
";

#[test]
fn overlay_maps_merge_scalars_and_lists_replace_null_removes() {
    let (dev, _) = resolve_text(OVERLAYS, "dev");
    let (prod, _) = resolve_text(OVERLAYS, "prod");
    // Maps merge: tags and environment keep the base's other keys.
    assert_eq!(dev.tags["cost"], "shared");
    assert_eq!(prod.tags["cost"], "prod");
    assert_eq!(prod.tags["team"], "photos");
    assert_eq!(prod.tags["env"], "prod");
    assert_eq!(prod.tags["managed-by"], "stripstack");
    let strip = &prod.functions["strip"];
    assert_eq!(strip.environment["MODE"], "strict");
    assert_eq!(strip.environment["BUCKET"], "demo-source-prod-123456789012");
    // Scalars replace; unset ones keep the base's value or default.
    assert_eq!((strip.memory, strip.timeout), (1024, DEFAULT_TIMEOUT));
    assert_eq!(dev.functions["strip"].memory, DEFAULT_MEMORY);
    assert!(prod.buckets["source"].retain && prod.buckets["source"].versioning);
    // Lists replace wholesale: prod's one trigger has no suffixes.
    assert_eq!(strip.triggers.len(), 1);
    assert_eq!(strip.triggers[0].prefix, "incoming/");
    assert!(strip.triggers[0].suffixes.is_empty());
    assert_eq!(
        dev.functions["strip"].triggers[0].suffixes,
        vec![".jpg", ".JPG"]
    );
    // `null` removes.
    assert!(!prod.buckets.contains_key("scratch"));
    assert_eq!(dev.buckets["scratch"].name, "demo-scratch-dev-123456789012");
}

#[test]
fn interpolation_uses_the_environment_region_and_account() {
    let (prod, graph) = resolve_text(OVERLAYS, "prod");
    assert_eq!(prod.region, "us-east-1");
    let parameter = &prod.parameters["/demo/prod/source"];
    assert_eq!(parameter.value, "demo-source-prod-123456789012");
    assert_eq!(parameter.description.as_deref(), Some("in us-east-1"));
    assert!(parameter.secure);
    assert_eq!(
        prod.functions["strip"].arn,
        "arn:aws:lambda:us-east-1:123456789012:function:demo-prod-strip"
    );
    assert_eq!(
        prod.functions["strip"].allow[0].resources,
        vec!["arn:aws:s3:::demo-source-prod-123456789012/*"]
    );
    let deps = |node: Node| graph.dependencies(&node).cloned().collect::<Vec<_>>();
    assert_eq!(
        deps(Node::new(NodeKind::Parameter, "/demo/prod/source")),
        vec![Node::new(NodeKind::Bucket, "source")]
    );
    assert_eq!(
        deps(Node::new(NodeKind::Function, "strip")),
        vec![Node::new(NodeKind::Bucket, "source")]
    );
}

#[test]
fn partition_follows_the_region() {
    let text = "stack: demo\nregion: cn-north-1\nenvironments:\n  dev: {}\nbuckets:\n  b: {}\nusers:\n  u: { allow: [{ actions: s3:ListBucket, resources: \"${buckets.b.arn}\" }] }\n";
    let (dev, _) = resolve_text(text, "dev");
    assert_eq!(
        dev.buckets["b"].arn,
        "arn:aws-cn:s3:::demo-b-dev-123456789012"
    );
    assert_eq!(
        dev.users["u"].arn,
        "arn:aws-cn:iam::123456789012:user/demo-dev-u"
    );
}

/// `--region` resolves the stack there: no ARN keeps the file's region (the trigger's
/// function ARN would not validate), and the partition follows.
#[test]
fn a_region_override_reaches_every_arn() {
    let file = pipeline();
    for (region, partition) in [("us-west-2", "aws"), ("cn-north-1", "aws-cn")] {
        let stack = file
            .resolve_in("dev", "123456789012", Some(region))
            .expect("resolves");
        assert_eq!(stack.region, region);
        let strip = &stack.functions["strip"];
        assert_eq!(
            strip.arn,
            format!(
                "arn:{partition}:lambda:{region}:123456789012:function:{}",
                strip.name
            )
        );
        let statements = format!("{:?}", strip.allow);
        assert!(!statements.contains("eu-west-2"), "{statements}");
        assert!(
            !statements.contains("arn:aws:") || partition == "aws",
            "{statements}"
        );
    }
    let default = file.resolve("dev", "123456789012").expect("resolves");
    assert_eq!(default.region, "eu-west-2");
}

#[test]
fn bucket_names_may_refer_to_other_buckets() {
    let text = format!(
        "{HEAD}buckets:\n  logs: {{ name: \"${{buckets.source.name}}-logs\" }}\n  source: {{}}\n"
    );
    let (dev, graph) = resolve_text(&text, "dev");
    assert_eq!(
        dev.buckets["logs"].name,
        "demo-source-dev-123456789012-logs"
    );
    let order = graph.order().expect("acyclic");
    let position = |name: &str| order.iter().position(|n| n.name == name);
    assert!(position("source") < position("logs"));
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let text = format!(
        "{HEAD}buckets:\n  a: &defaults {{ versioning: false, tls_only: false }}\n  b: {{ <<: *defaults, retain: true }}\n"
    );
    let (dev, _) = resolve_text(&text, "dev");
    let b = &dev.buckets["b"];
    assert!(!b.versioning && !b.tls_only && b.retain);
}

// ---------------------------------------------------------------- the real stack

fn pipeline_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/exif-pipeline.yaml")
}

fn pipeline() -> StackFile {
    load(&pipeline_path()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn exif_pipeline_loads_without_warnings() {
    let stack = pipeline();
    assert_eq!(stack.name(), "exif-pipeline");
    assert_eq!(stack.env_names(), vec!["dev", "local", "prod"]);
    assert!(
        stack.warnings().is_empty(),
        "{}",
        stack.render_warnings(false)
    );
    assert_eq!(
        stack.counts(),
        "2 buckets, 2 parameters, 2 users, 1 function, 1 queue"
    );
    assert_eq!(
        stack.env_settings("local").expect("declared"),
        EnvSettings {
            region: "eu-west-2".to_owned(),
            endpoint: Some("http://127.0.0.1:4566".to_owned()),
        }
    );
    assert_eq!(stack.env_settings("prod").expect("declared").endpoint, None);
}

#[test]
fn exif_pipeline_dev() {
    let dev = pipeline().resolve("dev", "123456789012").expect("resolves");
    assert_eq!(
        (dev.stack.as_str(), dev.env.as_str(), dev.region.as_str()),
        ("exif-pipeline", "dev", "eu-west-2")
    );
    let source = &dev.buckets["source"];
    assert_eq!(source.name, "exif-pipeline-source-dev-123456789012");
    assert_eq!(
        source.arn,
        "arn:aws:s3:::exif-pipeline-source-dev-123456789012"
    );
    assert!(source.versioning && source.tls_only && source.force_destroy && !source.retain);
    let destination = &dev.buckets["destination"];
    assert_eq!(
        destination.name,
        "exif-pipeline-destination-dev-123456789012"
    );
    assert_eq!(
        destination.lifecycle,
        vec![
            resolved::LifecycleRule {
                id: "intelligent-tiering".to_owned(),
                prefix: String::new(),
                transition_days: Some(30),
                storage_class: Some("INTELLIGENT_TIERING".to_owned()),
                expiration_days: None,
                noncurrent_expiration_days: None,
                abort_incomplete_multipart_days: None,
            },
            resolved::LifecycleRule {
                id: "abort-incomplete-uploads".to_owned(),
                prefix: String::new(),
                transition_days: None,
                storage_class: None,
                expiration_days: None,
                noncurrent_expiration_days: None,
                abort_incomplete_multipart_days: Some(7),
            }
        ]
    );
    let names: Vec<&String> = dev.parameters.keys().collect();
    assert_eq!(
        names,
        [
            "/exif-pipeline/dev/destination-bucket",
            "/exif-pipeline/dev/source-bucket"
        ]
    );
    assert_eq!(
        dev.parameters["/exif-pipeline/dev/source-bucket"].value,
        source.name
    );
    assert!(!dev.parameters["/exif-pipeline/dev/source-bucket"].secure);

    let user_a = &dev.users["user-a"];
    assert_eq!(user_a.name, "exif-pipeline-dev-user-a");
    assert_eq!(
        user_a.arn,
        "arn:aws:iam::123456789012:user/exif-pipeline-dev-user-a"
    );
    assert_eq!(user_a.policy_name, "exif-pipeline-dev-user-a");
    assert_eq!(
        user_a.policy_arn,
        "arn:aws:iam::123456789012:policy/exif-pipeline-dev-user-a"
    );
    assert_eq!(
        user_a.secret_parameter,
        "/exif-pipeline/dev/users/user-a/secret-access-key"
    );
    assert!(user_a.access_key);
    assert_eq!(
        user_a.allow,
        vec![
            resolved::Statement {
                actions: vec!["s3:ListBucket".to_owned()],
                resources: vec![source.arn.clone()],
            },
            resolved::Statement {
                actions: vec!["s3:GetObject".to_owned(), "s3:PutObject".to_owned()],
                resources: vec![format!("{}/*", source.arn)],
            },
        ]
    );
    let user_b = &dev.users["user-b"];
    assert!(user_b
        .allow
        .iter()
        .all(|s| s.resources.iter().all(|r| r.starts_with(&destination.arn))));

    let strip = &dev.functions["strip"];
    assert_eq!(strip.name, "exif-pipeline-dev-strip");
    assert_eq!(
        strip.arn,
        "arn:aws:lambda:eu-west-2:123456789012:function:exif-pipeline-dev-strip"
    );
    assert_eq!(strip.role_name, "exif-pipeline-dev-strip-role");
    assert_eq!(
        strip.role_arn,
        "arn:aws:iam::123456789012:role/exif-pipeline-dev-strip-role"
    );
    assert_eq!(
        (strip.package.as_str(), strip.memory, strip.timeout),
        ("lambda", 256, 30)
    );
    assert_eq!(strip.environment["DESTINATION_BUCKET"], destination.name);
    assert!(strip
        .allow
        .iter()
        .any(|s| s.actions.contains(&"s3:PutObject".to_owned())
            && s.resources == vec![format!("{}/*", destination.arn)]));
    assert!(strip.allow.iter().any(|s| s.resources
        == vec![
            "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/exif-pipeline-dev-strip:*"
        ]));
    assert_eq!(
        strip.triggers,
        vec![resolved::Trigger {
            bucket: "source".to_owned(),
            events: vec![resolved::TriggerEvent::Created],
            prefix: "uploads/".to_owned(),
            suffixes: [".jpg", ".jpeg", ".JPG", ".JPEG"]
                .map(str::to_owned)
                .to_vec(),
        }]
    );
    assert_eq!(dev.tags["project"], "exif-pipeline");
    assert_eq!(dev.tags["stack"], "exif-pipeline");
    assert_eq!(dev.endpoint, None);
}

#[test]
fn exif_pipeline_prod_and_local() {
    let stack = pipeline();
    let prod = stack.resolve("prod", "210987654321").expect("resolves");
    assert_eq!(
        prod.buckets["source"].name,
        "exif-pipeline-source-prod-210987654321"
    );
    for bucket in prod.buckets.values() {
        assert!(
            bucket.retain && !bucket.force_destroy && bucket.tls_only,
            "{bucket:?}"
        );
    }
    assert_eq!(prod.users["user-b"].name, "exif-pipeline-prod-user-b");

    let local = stack.resolve("local", "000000000000").expect("resolves");
    assert_eq!(local.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    assert_eq!(
        local.buckets["destination"].name,
        "exif-pipeline-destination-local-000000000000"
    );
    for bucket in local.buckets.values() {
        assert!(!bucket.tls_only && bucket.force_destroy, "{bucket:?}");
    }
}

#[test]
fn exif_pipeline_dependencies() {
    let (_, graph) = pipeline()
        .resolve_with_dependencies("dev", "123456789012", None)
        .expect("resolves");
    let deps = |kind, name: &str| {
        graph
            .dependencies(&Node::new(kind, name))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(deps(NodeKind::User, "user-a"), ["bucket.source"]);
    assert_eq!(
        deps(NodeKind::Function, "strip"),
        ["bucket.destination", "bucket.source", "queue.failures"]
    );
    assert_eq!(
        deps(NodeKind::Parameter, "/exif-pipeline/dev/destination-bucket"),
        ["bucket.destination"]
    );
    let order: Vec<String> = graph
        .order()
        .expect("acyclic")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        order,
        [
            "bucket.destination",
            "bucket.source",
            "parameter./exif-pipeline/dev/destination-bucket",
            "parameter./exif-pipeline/dev/source-bucket",
            "user.user-a",
            "user.user-b",
            "queue.failures",
            "function.strip",
        ]
    );
}

#[test]
fn unknown_environment_and_bad_account() {
    let stack = pipeline();
    let err = stack
        .resolve("prd", "123456789012")
        .expect_err("unknown env")
        .to_string();
    assert!(
        err.starts_with("unknown environment `prd` in ")
            && err.ends_with(" (did you mean `prod`?); declared environments: dev, local, prod"),
        "{err}"
    );
    let err = stack
        .env_settings("staging")
        .expect_err("unknown env")
        .to_string();
    assert!(
        err.ends_with("exif-pipeline.yaml; declared environments: dev, local, prod"),
        "{err}"
    );
    let err = stack
        .resolve("dev", "12345")
        .expect_err("bad account")
        .to_string();
    assert_eq!(err, "invalid AWS account id `12345`: expected 12 digits");
}

// ---------------------------------------------------------------- files and commands

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("stripstack-stack-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn find_stack_file_picks_the_only_or_the_named_stack() {
    let stacks = pipeline_path()
        .parent()
        .map(Path::to_path_buf)
        .expect("stacks dir");
    assert_eq!(
        find_stack_file(&stacks, None).expect("one stack"),
        stacks.join("exif-pipeline.yaml")
    );
    assert_eq!(
        find_stack_file(&stacks, Some("exif-pipeline")).expect("named"),
        stacks.join("exif-pipeline.yaml")
    );

    let dir = TempDir::new("find");
    let err = find_stack_file(&dir.0, None)
        .expect_err("empty")
        .to_string();
    assert!(err.starts_with("no stack files (*.yaml) in "), "{err}");
    dir.write("alpha.yaml", "");
    dir.write("beta.yaml", "");
    dir.write("notes.txt", "");
    let err = find_stack_file(&dir.0, None)
        .expect_err("ambiguous")
        .to_string();
    assert!(
        err.ends_with(": alpha, beta; choose one with --stack NAME"),
        "{err}"
    );
    let err = find_stack_file(&dir.0, Some("alpa"))
        .expect_err("missing")
        .to_string();
    assert!(
        err.ends_with(" (did you mean `alpha`?); available: alpha, beta"),
        "{err}"
    );
}

#[test]
fn paths_are_shown_relative_to_the_current_directory() {
    let file = Path::new("/work/repo/stacks/a.yaml");
    assert_eq!(
        relative_to(file, Path::new("/work/repo")),
        Some(PathBuf::from("stacks/a.yaml"))
    );
    assert_eq!(
        relative_to(file, Path::new("/work/repo/xtask")),
        Some(PathBuf::from("../stacks/a.yaml"))
    );
    assert_eq!(relative_to(file, Path::new("/home/me/deep/dir")), None);
}

#[test]
fn load_error_displays_the_diagnostics() {
    let dir = TempDir::new("load");
    let path = dir.write(
        "demo.yaml",
        &format!("{HEAD}buckets:\n  source: {{ versionin: true }}\n"),
    );
    let err = load(&path).expect_err("invalid").to_string();
    assert!(err.contains("is not a valid stack (1 error):"), "{err}");
    assert!(
        err.contains(":6:13: error: unknown field `versionin`"),
        "{err}"
    );
    assert!(err.contains("did you mean `versioning`?"), "{err}");
}

#[test]
fn check_all_finds_invalid_and_duplicate_stacks() {
    let stacks = pipeline_path()
        .parent()
        .map(Path::to_path_buf)
        .expect("stacks dir");
    let all_valid = |dir: &Path| {
        check_all(dir)
            .expect("runs")
            .iter()
            .all(|check| check.valid.is_some())
    };
    assert!(all_valid(&stacks));

    let dir = TempDir::new("validate");
    dir.write("demo.yaml", HEAD);
    assert!(all_valid(&dir.0));
    dir.write(
        "other.yaml",
        "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\n",
    );
    // `other.yaml` redefines stack `demo` (and its name does not match the file: a warning).
    assert!(!all_valid(&dir.0));
}

#[test]
fn rendered_diagnostics_snapshot() {
    let text = "\
stack: demo
region: eu-west-2
environments:
  dev: {}
  prod:
    buckets:
      source: { retain: true, versionin: false }
  local:
    endpont: http://127.0.0.1:4566
buckets:
  source:
    name: \"${stack}-source-${env}-${account}\"
    force_destroy: true
    lifecycle:
      - { id: x, transition_days: 30, storage_class: INTELIGENT_TIERING }
users:
  user-a:
    allow:
      - { actions: [s3GetObject, s3:GetObjet], resources: [\"${buckets.source.arn}/*\", \"${buckets.source.name}\"] }
functions:
  strip:
    package: lambda
    memory: 64
    allow:
      - { actions: [s3:PutObject], resources: [\"${buckets.source.arn}/*\"] }
    triggers:
      - { bucket: source, prefix: uploads/, suffixes: [.jpg] }
      - { bucket: sourc }
";
    let source = Source::new(FILE, text);
    let (_, diagnostics) = analyse(Path::new(FILE), source.clone());
    insta::assert_snapshot!(invalid(&source, diagnostics).to_string());
}

/// The shipped pipeline runs on Graviton in AWS, and on this machine's CPU in `local`, where
/// the emulator runs the bootstrap as a host process.
#[test]
fn the_pipeline_declares_arm64_and_local_takes_the_host_architecture() {
    let file = pipeline();
    for env in ["dev", "prod"] {
        let stack = file.resolve(env, "123456789012").expect("resolves");
        assert_eq!(
            stack.functions["strip"].architecture,
            Architecture::Arm64,
            "{env}"
        );
    }
    let local = file.resolve("local", "000000000000").expect("resolves");
    assert_eq!(local.functions["strip"].architecture, Architecture::host());
    let bad = "stack: demo\nregion: eu-west-2\nenvironments:\n  dev: {}\nfunctions:\n  f: { package: lambda, architecture: sparc }\n";
    let found = check(bad);
    assert!(
        found
            .iter()
            .any(|d| d.starts_with("6:") && d.contains("error") && d.contains("sparc")),
        "{found:?}"
    );
}

/// 400 seeded mutations of the shipped stack (a line dropped, duplicated or swapped with the
/// next, an indentation changed, a character replaced by one YAML cares about): none panics,
/// and every error names the place it is about.
#[test]
fn every_error_in_a_mutated_shipped_stack_names_its_line_and_column() {
    let shipped = std::fs::read_to_string(pipeline_path()).expect("the shipped stack");
    let lines: Vec<&str> = shipped.lines().collect();
    let mut rng = fastrand::Rng::with_seed(25);
    let mut without_place = Vec::new();
    let mut errors = 0;
    for round in 0..400 {
        let mut mutated: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        let at = rng.usize(..mutated.len());
        match rng.u8(..5) {
            0 => {
                mutated.remove(at);
            }
            1 => mutated.insert(at, mutated[at].clone()),
            2 if at + 1 < mutated.len() => mutated.swap(at, at + 1),
            3 => mutated[at] = format!("  {}", mutated[at]),
            _ => {
                let line = &mutated[at];
                if !line.is_empty() {
                    let chars: Vec<char> = line.chars().collect();
                    let i = rng.usize(..chars.len());
                    let with: char = rng
                        .choice([':', '-', '{', '[', '"', '$', ' ', 'x', '#'])
                        .unwrap();
                    let mut chars = chars;
                    chars[i] = with;
                    mutated[at] = chars.into_iter().collect();
                }
            }
        }
        let text = mutated.join("\n") + "\n";
        let (_, diagnostics) = analyse(
            Path::new("stacks/exif-pipeline.yaml"),
            Source::new("stacks/exif-pipeline.yaml", &text),
        );
        for d in diagnostics.iter().filter(|d| d.is_error()) {
            errors += 1;
            if d.span.is_none() {
                without_place.push(format!("round {round}: {}", d.message));
            }
        }
    }
    assert!(errors > 100, "the mutations make errors ({errors})");
    assert!(
        without_place.is_empty(),
        "{} of {errors} errors have no place:\n{}",
        without_place.len(),
        without_place.join("\n")
    );
}
