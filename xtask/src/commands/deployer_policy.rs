//! `cargo xtask deployer-policy`: the least-privilege IAM policy for the person or CI role
//! that runs `plan`, `deploy` and `destroy` for one stack and env: each kind's grants, the
//! state bucket's and (`--engine cloudformation`) the CloudFormation engine's, scoped to this
//! stack's resources. A test deploys, plans and destroys with nothing more on an emulator that
//! enforces IAM.

use std::process::ExitCode;

use serde_json::Value;

use crate::resources::grant::{self, MANAGED_POLICY_LIMIT};
use crate::session::DeployerPolicyOptions;
use crate::stack::ResolvedStack;

pub(crate) async fn run(args: DeployerPolicyOptions) -> anyhow::Result<ExitCode> {
    let stack =
        crate::session::resolve(&args.target, args.account.as_deref(), "the policy").await?;
    let document = document(&stack, args.cloudformation);
    let parts = grant::split(&document);
    let count = parts.len();
    let part = match (args.part, count) {
        (None, 1) => 1,
        (Some(part), _) if (1..=count).contains(&part) => part,
        (None, _) => {
            eprintln!(
                "error: the grants take {count} managed policies ({} characters; one holds \
                 {MANAGED_POLICY_LIMIT}): print each with --part 1 … --part {count}, and attach \
                 them all",
                grant::policy_size(&document)
            );
            return Ok(ExitCode::from(2));
        }
        (Some(part), _) => {
            eprintln!("error: --part {part}: there are {count} part(s)");
            return Ok(ExitCode::from(2));
        }
    };
    println!("{}", serde_json::to_string_pretty(&parts[part - 1])?);
    if count > 1 {
        eprintln!("part {part} of {count}: attach all {count} managed policies");
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy document for `stack`, and for its CloudFormation engine too (pure).
fn document(stack: &ResolvedStack, cloudformation: bool) -> Value {
    let mut grants = crate::engine::state::deployer_grants(stack);
    grants.extend(crate::resources::deployer_grants(stack));
    grants.extend(crate::resources::batch_job::deployer_grants(
        stack,
        &crate::engine::state::state_bucket(&stack.account, &stack.region),
    ));
    if cloudformation {
        grants.extend(crate::cfn::deployer_grants(stack));
    }
    grant::document(&grants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_of_a_fixed_stack() {
        let stack = crate::cfn::template::tests::fixed_stack();
        let document = document(&stack, false);
        insta::assert_json_snapshot!(document);
        // `reconcile`'s Batch Operations grants took the SDK engine's past one managed
        // policy: two parts, each within the limit.
        let parts = grant::split(&document);
        assert_eq!(
            parts.len(),
            2,
            "{} characters",
            grant::policy_size(&document)
        );
        for part in &parts {
            let size = grant::policy_size(part);
            assert!(size <= MANAGED_POLICY_LIMIT, "{size} characters");
        }
    }

    #[test]
    fn the_cloudformation_engine_adds_its_stack_only() {
        let stack = crate::cfn::template::tests::fixed_stack();
        let sids = |document: &Value| -> Vec<String> {
            document["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["Sid"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let mut with = sids(&document(&stack, true));
        assert_eq!(with.pop().as_deref(), Some("CloudFormationEngine"));
        assert_eq!(with, sids(&document(&stack, false)));
        // With the CloudFormation engine's statements the grants outgrow one managed policy:
        // split, every part within the limit, nothing lost.
        let whole = document(&stack, true);
        let parts = grant::split(&whole);
        assert_eq!(parts.len(), 2, "{} characters", grant::policy_size(&whole));
        for part in &parts {
            assert!(grant::policy_size(part) <= MANAGED_POLICY_LIMIT);
        }
        let statements: Vec<Value> = parts
            .iter()
            .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(json!(statements), whole["Statement"]);
    }
}
