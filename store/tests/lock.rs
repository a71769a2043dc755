//! A second process opening a data directory that is in use gets `Error::Locked`.
//!
//! The child is this test binary run again with `CHILD_DIR_ENV` set, filtered to
//! `child_opens_store`, which reports through its exit code what `SledStore::open` returned.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TestResult, device_keys};
use wuts_store::{Devices, Error, SledStore};

const CHILD_DIR_ENV: &str = "WUTS_STORE_LOCK_TEST_DIR";
const EXIT_LOCKED: i32 = 10;
const EXIT_OPENED: i32 = 11;
const EXIT_OTHER: i32 = 12;

/// In a normal run this does nothing. In the child it opens the directory and exits with a code
/// saying what happened.
#[test]
fn child_opens_store() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let code = match SledStore::open(&dir) {
        Ok(store) => match store.list_devices() {
            Ok(devices) if devices.len() == 1 => EXIT_OPENED,
            _ => EXIT_OTHER,
        },
        Err(Error::Locked { path }) if path == Path::new(&dir) => EXIT_LOCKED,
        Err(_) => EXIT_OTHER,
    };
    std::process::exit(code);
}

/// Runs the child and returns its exit code; its output is captured so it neither clutters this
/// run's output nor gets lost: it is printed (and shown by the harness) if the code is unexpected.
fn run_child(dir: &Path, expected: i32) -> Result<Option<i32>, Box<dyn std::error::Error>> {
    let output = Command::new(std::env::current_exe()?)
        .args(["child_opens_store", "--exact", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .output()?;
    let code = output.status.code();
    if code != Some(expected) {
        println!("child stdout:\n{}", String::from_utf8_lossy(&output.stdout));
        println!("child stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(code)
}

#[test]
fn second_process_is_refused_until_the_first_closes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    store.create_device(&device_keys(1))?;

    assert_eq!(run_child(dir.path(), EXIT_LOCKED)?, Some(EXIT_LOCKED));

    drop(store);
    assert_eq!(run_child(dir.path(), EXIT_OPENED)?, Some(EXIT_OPENED));
    Ok(())
}

#[test]
fn locked_error_names_the_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _store = SledStore::open(dir.path())?;
    let error = SledStore::open(dir.path())
        .err()
        .ok_or("second open succeeded")?;
    assert!(matches!(&error, Error::Locked { path } if path == dir.path()));
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string())
    );
    Ok(())
}
