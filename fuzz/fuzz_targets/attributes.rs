//! The `attributeSet` decoder must never panic on any element tree the XML layer accepts.
//! The root is decoded as an attributeSet, and so is each of its children (which catches
//! inputs whose root is an envelope or an `attributes` wrapper). The XML layer's own reader of
//! plain tag attributes must read them as quick-xml's reader does, wherever it reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provd::soap::xml::{parse, simple_attributes_agree, Limits};
use provd::soap::AttributeSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(simple_attributes_agree(text));
    }
    if let Ok(root) = parse(data, &Limits::default()) {
        let _ = AttributeSet::decode(&root);
        for child in &root.children {
            let _ = AttributeSet::decode(child);
        }
    }
});
