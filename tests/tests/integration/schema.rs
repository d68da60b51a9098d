//! The committed JSON Schema and the deployer's parser agree: on the shipped stack, on every
//! YAML example of the README, and on misspelt keys (both refuse them). The stack files the
//! other tests deploy are checked as they run (`StackFile::run`).

use stripstack_tests::schema;

/// The stack file written to a file of its own, parsed and validated as `cargo xtask` does.
fn parser_accepts(name: &str, yaml: &str) -> Result<(), String> {
    let dir = xtask::workspace::target_dir().join("test-stacks");
    std::fs::create_dir_all(&dir).expect("create target/test-stacks");
    let path = dir.join(format!("{}.yaml", stripstack_tests::unique(name)));
    std::fs::write(&path, yaml).expect("write the stack");
    let loaded = xtask::stack::load(&path)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"));
    std::fs::remove_file(&path).expect("remove the stack");
    loaded
}

fn shipped() -> String {
    std::fs::read_to_string(xtask::workspace::stacks_dir().join("exif-pipeline.yaml"))
        .expect("the shipped stack")
}

/// The README's ```yaml blocks.
fn readme_examples() -> Vec<String> {
    let readme =
        std::fs::read_to_string(xtask::workspace::root().join("README.md")).expect("README.md");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                examples.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    examples
}

#[test]
fn the_schema_accepts_the_shipped_stack_and_every_readme_example() {
    let examples = readme_examples();
    assert!(!examples.is_empty(), "the README has YAML examples");
    for (name, yaml) in std::iter::once(("the shipped stack".to_owned(), shipped())).chain(
        examples
            .into_iter()
            .enumerate()
            .map(|(i, yaml)| (format!("README example {}", i + 1), yaml)),
    ) {
        parser_accepts("schema", &yaml).unwrap_or_else(|e| panic!("{name}: {e}"));
        schema::check(&yaml)
            .unwrap_or_else(|e| panic!("{name}: the parser accepts it, the schema refuses:\n{e}"));
    }
}

#[test]
fn a_misspelt_key_is_refused_by_the_parser_and_the_schema_alike() {
    let stack = shipped();
    let misspellings = [
        // At the top level, in a kind's section, in an environment overlay, in a nested list.
        ("stack: ", "stak_name: x\nstack: "),
        ("\nbuckets:\n", "\nbukets: {}\nbuckets:\n"),
        (
            "    package: lambda",
            "    package: lambda\n    memroy: 512",
        ),
        ("  dev:\n", "  dev:\n    regoin: eu-west-1\n"),
    ];
    for (anchor, replacement) in misspellings {
        assert!(stack.contains(anchor), "the shipped stack has `{anchor}`");
        let yaml = stack.replacen(anchor, replacement, 1);
        assert!(
            parser_accepts("misspelt", &yaml).is_err(),
            "the parser accepts {replacement:?}"
        );
        assert!(
            schema::check(&yaml).is_err(),
            "the schema accepts {replacement:?}"
        );
    }
}
