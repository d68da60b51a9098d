//! `cargo xtask plan`: read the real state of every resource in parallel, diff and render.

use std::process::ExitCode;

use crate::session::{self, PlanOptions};

pub(crate) async fn run(args: PlanOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = session::connect(&args.target).await?;
    let artifacts = session::existing_artifacts(&stack);
    let plan = session::compute_plan(&stack, &clients, &artifacts).await?;
    if let Some(path) = &args.out {
        crate::session::save_plan(path, &plan, &artifacts)?;
        eprintln!(
            "plan saved to {}: apply it with `cargo xtask deploy --plan {}`",
            path.display(),
            path.display()
        );
    }
    if args.json {
        println!("{}", crate::plan::render::json(&plan));
    } else {
        print!(
            "{}",
            crate::plan::render::text(&plan, crate::style::stdout_color())
        );
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
