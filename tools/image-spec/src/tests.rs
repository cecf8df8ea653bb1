use super::*;

const PROGRAMS: &[&str] = &["vsh", "hello", "true", "init"];

fn check(text: &str) -> Result<Loaded, SpecError> {
    parse(Path::new("boot/images/t.toml"), text, PROGRAMS)
}

fn error(text: &str) -> String {
    check(text).unwrap_err().to_string()
}

#[test]
fn an_empty_spec_has_the_defaults() {
    let loaded = check("").unwrap();
    let plan = loaded.plan();
    assert!(plan.contains("\nservice device 16\nservice vfs 16\n"), "{plan}");
    let resolved = loaded.resolved();
    assert!(resolved.contains("restarts = 16") && resolved.contains("data = true"), "{resolved}");
    // The resolved spec reads back the same.
    let again = check(&resolved).unwrap();
    assert_eq!(again.plan().lines().skip(1).collect::<Vec<_>>(), plan.lines().skip(1).collect::<Vec<_>>());
}

#[test]
fn unknown_fields_are_refused_with_their_line() {
    let e = error("description = \"x\"\n\n[kernel]\nargz = []\n");
    assert!(e.starts_with("boot/images/t.toml:4: unknown field `argz`"), "{e}");
    let e = error("[[containers]]\nname = \"a\"\nmemry = \"1M\"\n");
    assert!(e.starts_with("boot/images/t.toml:3: unknown field `memry`"), "{e}");
}

#[test]
fn wrong_types_are_refused_with_their_line() {
    let e = error("[services.vfs]\nrestarts = \"many\"\n");
    assert!(e.starts_with("boot/images/t.toml:2: invalid type: string \"many\", expected u64"), "{e}");
    let e = error("[[run]]\nprogram = \"bin/vsh\"\nmode = \"sometimes\"\n");
    assert!(e.starts_with("boot/images/t.toml:3: unknown variant `sometimes`"), "{e}");
}

#[test]
fn missing_files_and_programs_are_named() {
    let e = error("[[files]]\npath = \"etc/motd\"\nsource = \"no/such/file\"\n");
    assert_eq!(e, "boot/images/t.toml:3: files[0].source: boot/images/no/such/file is not a file");
    let e = error("[[run]]\nprogram = \"bin/nope\"\n");
    assert_eq!(e, "boot/images/t.toml:2: run[0].program: \"bin/nope\" is not in the image (programs are bin/NAME)");
    let e = error("[[containers]]\nname = \"a\"\nroot = { size = \"2M\", seed = \"nowhere\" }\n");
    assert_eq!(e, "boot/images/t.toml:3: containers[0].root.seed: boot/images/nowhere is not a directory");
    let e = error("[[files]]\npath = \"etc/x\"\n");
    assert_eq!(e, "boot/images/t.toml:2: files[0]: give source or text, one of them");
}

#[test]
fn container_names_are_unique_and_valid() {
    let e = error("[[containers]]\nname = \"web\"\n\n[[containers]]\nname = \"web\"\n");
    assert_eq!(e, "boot/images/t.toml:5: containers[1].name: \"web\" is used twice");
    let e = error("[[containers]]\nname = \"1st\"\n");
    assert!(e.starts_with("boot/images/t.toml:2: containers[0].name: \"1st\": letters"), "{e}");
}

#[test]
fn a_quota_above_the_parents_is_refused() {
    let spec = "[[containers]]\nname = \"outer\"\nmemory = \"16M\"\nprocesses = 4\n\n\
                [[containers]]\nname = \"inner\"\nparent = \"outer\"\nmemory = \"32M\"\n";
    let e = error(spec);
    assert_eq!(e, "boot/images/t.toml:9: containers[1].memory: above its parent \"outer\"'s limit");
    let spec = "[[containers]]\nname = \"outer\"\nprocesses = 4\n\n[[containers]]\nname = \"inner\"\n\
                parent = \"outer\"\nprocesses = 5\n";
    assert_eq!(error(spec), "boot/images/t.toml:8: containers[1].processes: above its parent \"outer\"'s limit");
    let e = error("[[containers]]\nname = \"x\"\nparent = \"later\"\n");
    assert_eq!(e, "boot/images/t.toml:3: containers[0].parent: \"later\" is not a container listed before it");
}

#[test]
fn sizes_devices_arguments_and_paths_are_checked() {
    for (text, want) in [
        ("[[containers]]\nname = \"a\"\nmemory = \"lots\"\n", "containers[0].memory: \"lots\" is not a size"),
        (
            "[[containers]]\nname = \"a\"\ndevices = [\"blk1:rw\"]\n",
            "containers[0].devices[0]: \"blk1:rw\" is not DEVICE",
        ),
        (
            "[[containers]]\nname = \"a\"\nvirtual = [\"floppy\"]\n",
            "containers[0].virtual[0]: \"floppy\" is not one of",
        ),
        (
            "[[run]]\nprogram = \"bin/vsh\"\nargs = [\"two words\"]\n",
            "run[0].args[0]: \"two words\": an argument is one word",
        ),
        ("[kernel]\nargs = [\"flag\"]\n", "kernel.args[0]: \"flag\" is not key=value"),
        ("[[files]]\npath = \"bin/vsh\"\ntext = \"x\"\n", "files[0].path: \"bin/vsh\": a relative path outside"),
        ("[root]\nmemory = [\"/tmp\"]\n", "root.memory[0]: \"/tmp\": an absolute path other than"),
        ("[services.device]\nrestarts = 5000\n", "services.device.restarts: 5000 is above 1000"),
    ] {
        let e = error(text);
        assert!(e.contains(want), "{text:?}: {e}");
        assert!(e.starts_with("boot/images/t.toml:"), "{e}");
    }
}

#[test]
fn the_plan_says_what_init_does() {
    let spec = r#"
[kernel]
args = ["log=info"]

[services.vfs]
restarts = 3

[root]
data = false
memory = ["/scratch"]

[[run]]
program = "bin/hello"
args = ["at", "boot"]

[[run]]
program = "bin/vsh"
args = ["--tty", "serial0"]
mode = "keep"

[[containers]]
name = "web"
memory = "16M"
processes = 8
root = { size = "4M" }
devices = ["blk1:ro"]
virtual = ["null", "console"]

[[containers.run]]
program = "bin/true"
mode = "start"
"#;
    let loaded = check(spec).unwrap();
    assert_eq!(loaded.boot_args(), "log=info\n");
    let plan: Vec<String> = loaded.plan().lines().skip(1).map(String::from).collect();
    assert_eq!(
        plan,
        [
            "service device 16",
            "service vfs 3 --no-data --memory /scratch",
            "container web parent=- pages=4096 processes=8 root=containers/web.vsf devices=blk1:ro virtual=null,console",
            "in web start bin/true",
            "run once bin/hello at boot",
            "run keep bin/vsh --tty serial0",
        ]
    );
    assert_eq!(loaded.vsf_roots(), [(String::from("web"), 4 << 20, None)]);
}
