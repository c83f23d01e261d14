//! Embeds the committed fuzz corpus (`../fuzz/corpus/<target>/*`) into the test binaries:
//! a wasm module has no file system, so `tests/fuzz_corpus.rs` gets every file through
//! `include_bytes!` from the generated `$OUT_DIR/corpus.rs`.
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut targets: Vec<PathBuf> = fs::read_dir(&root)
        .expect("fuzz/corpus exists")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    targets.sort();
    let mut code = String::from(
        "/// One corpus file: its name and its bytes.\n\
         pub type CorpusFile = (&'static str, &'static [u8]);\n\
         /// A fuzz target's name and its committed corpus.\n\
         pub type TargetCorpus = (&'static str, &'static [CorpusFile]);\n\
         /// Every committed corpus.\n\
         pub const CORPUS: &[TargetCorpus] = &[\n",
    );
    for dir in targets {
        println!("cargo:rerun-if-changed={}", dir.display());
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("corpus dir")
            .map(|e| e.expect("corpus file").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        writeln!(code, "    ({name:?}, &[").unwrap();
        for file in files {
            let file_name = file
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name");
            let absolute = file.canonicalize().expect("corpus path");
            writeln!(
                code,
                "        ({file_name:?}, include_bytes!({:?})),",
                absolute.display().to_string()
            )
            .unwrap();
        }
        code.push_str("    ]),\n");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("corpus.rs");
    fs::write(out, code).expect("write corpus.rs");
}
