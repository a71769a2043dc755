//! The sandbox speaks bytes on the wire only: it must not reach into the device engine or the
//! client layer, or it would stop being an independent test peer.

use std::fs;
use std::path::Path;

#[test]
fn sim_does_not_use_the_engine_or_the_client() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).expect("src/sim") {
        let path = entry.expect("entry").path();
        let text = fs::read_to_string(&path).expect("source");
        for banned in [
            "crate::engine",
            "crate::client",
            "wuts::engine",
            "wuts::client",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 5);
}
