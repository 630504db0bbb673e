//! The catalog's argument checks on any JSON for any tool: what passes has exactly the tool's
//! parameters, every required one, and nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else { return };
    let tools = keybridge_catalog::tools();
    let tool = &tools[pick as usize % tools.len()];
    let Ok(args) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    if let Ok(prepared) = tool.prepare(args) {
        for name in prepared.keys() {
            assert!(tool.params.iter().any(|p| p.name == name), "{}: {name} passed", tool.name);
        }
        for p in tool.params.iter().filter(|p| p.required) {
            assert!(prepared.contains_key(p.name), "{}: {} missing", tool.name, p.name);
        }
        // What passed once passes again unchanged.
        let again = tool.prepare(serde_json::Value::Object(prepared.clone())).unwrap();
        assert_eq!(again, prepared);
    }
});
