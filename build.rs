//! Build script: lays out the WABinary token tables and compiles our `.proto` files.
//!
//! Both outputs go to `OUT_DIR`; nothing is downloaded and no system `protoc` is needed (protox
//! parses the `.proto` files in-process).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

include!("src/binary/token_hash.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    tokens(&out)?;
    protos(&out)?;
    Ok(())
}

/// Turns `src/binary/tokens.txt` into static arrays plus an open-addressing lookup table, so the
/// encoder finds a token with one hash and (almost always) one comparison, and nothing is built
/// at run time.
fn tokens(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let src = "src/binary/tokens.txt";
    println!("cargo:rerun-if-changed={src}");
    let text = fs::read_to_string(src)?;
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or_default().to_string();
            sections.push((name, Vec::new()));
            continue;
        }
        let (idx, tok) = line.split_once('\t').ok_or("token line without a tab")?;
        let (_, list) = sections.last_mut().ok_or("token before any section")?;
        if idx.parse::<usize>()? != list.len() {
            return Err(format!("token index {idx} out of order").into());
        }
        list.push(tok.to_string());
    }
    let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
    if names.len() != 5
        || sections[0].1.len() != 236
        || sections[1..].iter().any(|s| s.1.len() != 256)
    {
        return Err(format!("unexpected token sections {names:?}").into());
    }

    let mut code = String::new();
    writeln!(
        code,
        "/// Single-byte tokens, indexed by the wire byte (index 0 is reserved)."
    )?;
    writeln!(code, "pub static SINGLE_BYTE: [&str; 236] = [")?;
    for t in &sections[0].1 {
        writeln!(code, "    {t:?},")?;
    }
    writeln!(code, "];")?;
    writeln!(
        code,
        "/// Double-byte dictionaries 0..=3 (`EC`..`EF`), indexed by the second byte."
    )?;
    writeln!(code, "pub static DOUBLE_BYTE: [[&str; 256]; 4] = [")?;
    for (_, list) in &sections[1..] {
        writeln!(code, "    [")?;
        for t in list {
            writeln!(code, "        {t:?},")?;
        }
        writeln!(code, "    ],")?;
    }
    writeln!(code, "];")?;

    // Every token in one flat list: single-byte 1..=235 first, then the four dictionaries.
    // The lookup table holds flat index + 1 (0 = empty); keys and lengths sit beside it.
    let mut flat: Vec<(&str, u16)> = Vec::new();
    for (i, t) in sections[0].1.iter().enumerate().skip(1) {
        flat.push((t, i as u16));
    }
    for (d, (_, list)) in sections[1..].iter().enumerate() {
        for (i, t) in list.iter().enumerate() {
            flat.push((t, 0x100 * (1 + d as u16) + i as u16));
        }
    }
    let mut table = vec![0u16; TOKEN_TABLE_SLOTS];
    for (fi, (t, _)) in flat.iter().enumerate() {
        let mut slot = token_slot(token_key(t.as_bytes()), t.len());
        let mut placed = false;
        for _ in 0..TOKEN_TABLE_SLOTS {
            if table[slot] == 0 {
                table[slot] = fi as u16 + 1;
                placed = true;
                break;
            }
            slot = (slot + 1) & (TOKEN_TABLE_SLOTS - 1);
        }
        if !placed {
            return Err("token table full".into());
        }
    }
    writeln!(
        code,
        "/// Open-addressing table over all tokens (see `token_hash.rs`): flat index + 1."
    )?;
    writeln!(
        code,
        "pub static LOOKUP: [u16; {TOKEN_TABLE_SLOTS}] = {table:?};"
    )?;
    writeln!(
        code,
        "/// Wire code of each flat token: 1..=235, or 0x100 * (1 + dict) + index."
    )?;
    let codes: Vec<u16> = flat.iter().map(|(_, c)| *c).collect();
    writeln!(code, "pub static CODES: [u16; {}] = {codes:?};", flat.len())?;
    writeln!(code, "/// Text of each flat token.")?;
    let texts: Vec<&str> = flat.iter().map(|(t, _)| *t).collect();
    writeln!(
        code,
        "pub static TEXTS: [&str; {}] = {texts:?};",
        flat.len()
    )?;
    writeln!(code, "/// Length and key (`token_key`) of each flat token.")?;
    let keys: Vec<(u8, u64, u64)> = flat
        .iter()
        .map(|(t, _)| {
            let k = token_key(t.as_bytes());
            (t.len() as u8, k.0, k.1)
        })
        .collect();
    writeln!(
        code,
        "pub static KEYS: [(u8, u64, u64); {}] = {keys:?};",
        flat.len()
    )?;
    fs::write(out.join("tokens.rs"), code)?;
    Ok(())
}

/// Compiles every `.proto` under `proto/` with protox + prost-build.
fn protos(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let Ok(dir) = fs::read_dir("proto") else {
        return Ok(());
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    let fds = protox::compile(&files, ["proto"])?;
    prost_build::Config::new().out_dir(out).compile_fds(fds)?;
    Ok(())
}
