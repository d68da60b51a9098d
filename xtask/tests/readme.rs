//! The README's stack example is a valid stack: it is checked like `validate` checks
//! `stacks/`, so the documentation cannot drift from the model.

use std::path::PathBuf;

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every fenced block of `language` in `text`.
fn blocks(text: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}");
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == fence => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                found.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    found
}

#[test]
fn the_stack_example_validates_and_resolves_in_every_environment() {
    let examples = blocks(&readme(), "yaml");
    assert_eq!(examples.len(), 1, "the README has one stack example");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme-example");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("photos.yaml");
    std::fs::write(&path, &examples[0]).unwrap();
    let file = xtask::stack::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(file.env_names(), ["dev", "prod"]);
    for env in file.env_names() {
        let stack = file
            .resolve(&env, "123456789012")
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(stack.buckets.len(), 2);
        assert_eq!(
            stack.buckets["originals"].retain,
            env == "prod",
            "the prod overlay retains the originals"
        );
        assert_eq!(
            stack.functions["strip"].renditions.len(),
            1,
            "the example declares a thumbnail"
        );
    }
}

#[test]
fn every_xtask_command_in_the_readme_exists() {
    let text = readme();
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--help")
        .output()
        .expect("run xtask --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let mut commands: Vec<&str> = text
        .split("cargo xtask ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|word| !word.is_empty())
        .collect();
    commands.sort_unstable();
    commands.dedup();
    assert!(commands.len() >= 9, "found {commands:?}");
    for command in commands {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "README shows `cargo xtask {command}`, which `cargo xtask --help` does not list"
        );
    }
}
