//! The sandbox speaks bytes on the wire only: it must not reach into the device engine, the
//! client layer, the client's group operations or the gateway, or it would stop being an
//! independent test peer (a limit or rule shared with the client looks right on both sides even
//! when it is wrong).

use std::fs;
use std::path::Path;

#[test]
fn sim_does_not_use_the_engine_the_client_ops_or_http() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).expect("src/sim") {
        let path = entry.expect("entry").path();
        let text = fs::read_to_string(&path).expect("source");
        for banned in [
            "crate::engine",
            "crate::client",
            "crate::ops",
            "crate::http",
            "wuts::engine",
            "wuts::client",
            "wuts::ops",
            "wuts::http",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 5);
}
