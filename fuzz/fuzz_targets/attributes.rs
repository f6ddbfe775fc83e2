//! The `attributeSet` decoder must never panic on any element tree the XML layer accepts.
//! The root is decoded as an attributeSet, and so is each of its children (which catches
//! inputs whose root is an envelope or an `attributes` wrapper).
#![no_main]

use libfuzzer_sys::fuzz_target;
use provd::soap::xml::{parse, Limits};
use provd::soap::AttributeSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = parse(data, &Limits::default()) {
        let _ = AttributeSet::decode(&root);
        for child in &root.children {
            let _ = AttributeSet::decode(child);
        }
    }
});
