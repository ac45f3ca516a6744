//! Removes the proxy-wasm callbacks a module does not implement from its exports.
//!
//! The Rust SDK exports every `proxy_on_*` callback, implemented or not, and Envoy calls each one it
//! finds exported: response headers, response body chunks, log, done, for every request. Each call
//! into the VM costs about half a microsecond (BENCHMARKS.md measures it), for nothing when the
//! filter has no code there. Envoy skips a callback the module does not export, so the build keeps
//! only the ones a filter implements. Only their export entries go here; wasm-opt, the next step
//! ([`crate::wasm_opt`]), then removes the code that nothing reaches any more.

/// Exports every module keeps: the VM's memory and start, the ABI marker, and the callbacks the
/// SDK itself needs (configuration, contexts, memory for values the host hands over).
pub const ALWAYS_KEPT: [&str; 5] = [
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_context_create",
    // The SDK frees a context here; without it every request's context would stay in memory.
    "proxy_on_delete",
    "proxy_on_memory_allocate",
];

const CALLBACK_PREFIX: &str = "proxy_on_";
const MAGIC_AND_VERSION: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const EXPORT_SECTION: u8 = 7;

/// `wasm` without the `proxy_on_*` exports that neither [`ALWAYS_KEPT`] nor `implemented` names;
/// `None` when there is none to remove (so a second pass changes nothing).
pub fn without_unused_callbacks(
    wasm: &[u8],
    implemented: &[&str],
) -> Result<Option<Vec<u8>>, String> {
    let keeps = |name: &str| {
        !name.starts_with(CALLBACK_PREFIX)
            || ALWAYS_KEPT.contains(&name)
            || implemented.contains(&name)
    };
    let mut out = MAGIC_AND_VERSION.to_vec();
    let mut removed = false;
    for (id, contents) in sections(wasm)? {
        let contents = if id == EXPORT_SECTION {
            let entries = export_entries(contents)?;
            let kept: Vec<&[u8]> = entries
                .iter()
                .filter(|(name, _)| keeps(name))
                .map(|(_, entry)| *entry)
                .collect();
            removed |= kept.len() < entries.len();
            let mut section = Vec::with_capacity(contents.len());
            write_length(&mut section, kept.len());
            kept.iter()
                .for_each(|entry| section.extend_from_slice(entry));
            section
        } else {
            contents.to_vec()
        };
        out.push(id);
        write_length(&mut out, contents.len());
        out.extend_from_slice(&contents);
    }
    Ok(removed.then_some(out))
}

/// The module's sections in order, as (id, contents).
fn sections(wasm: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    let body = wasm
        .strip_prefix(&MAGIC_AND_VERSION)
        .ok_or("not a WebAssembly 1.0 module")?;
    let mut reader = Reader(body);
    let mut sections = Vec::new();
    while !reader.0.is_empty() {
        let id = reader.byte()?;
        let size = reader.length()?;
        sections.push((id, reader.bytes(size)?));
    }
    Ok(sections)
}

/// The export section's entries, as (name, the entry's bytes).
fn export_entries(section: &[u8]) -> Result<Vec<(&str, &[u8])>, String> {
    let mut reader = Reader(section);
    let count = reader.length()?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let start = reader.0;
        let name_length = reader.length()?;
        let name = std::str::from_utf8(reader.bytes(name_length)?)
            .map_err(|_| "an export name is not UTF-8".to_string())?;
        let _kind = reader.byte()?;
        let _index = reader.length()?;
        let entry_length = start.len() - reader.0.len();
        entries.push((
            name,
            start
                .get(..entry_length)
                .ok_or("export entry out of range")?,
        ));
    }
    if !reader.0.is_empty() {
        return Err("the export section has bytes after its entries".into());
    }
    Ok(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&first, rest) = self.0.split_first().ok_or("the module ends early")?;
        self.0 = rest;
        Ok(first)
    }

    fn bytes(&mut self, length: usize) -> Result<&'a [u8], String> {
        if length > self.0.len() {
            return Err("a section runs past the end of the module".into());
        }
        let (taken, rest) = self.0.split_at(length);
        self.0 = rest;
        Ok(taken)
    }

    /// An unsigned LEB128 `u32`: sizes, counts and indices.
    fn length(&mut self) -> Result<usize, String> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value).map_err(|_| "a length does not fit".to_string());
            }
        }
        Err("a LEB128 number is longer than five bytes".into())
    }
}

fn write_length(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_names(wasm: &[u8]) -> Vec<String> {
        let (_, exports) = sections(wasm)
            .unwrap()
            .into_iter()
            .find(|(id, _)| *id == EXPORT_SECTION)
            .unwrap();
        export_entries(exports)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A module with a memory, two functions and four exports, written by hand.
    fn module() -> Vec<u8> {
        let mut wasm = MAGIC_AND_VERSION.to_vec();
        // Type section: one type, () -> ().
        wasm.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
        // Function section: two functions of type 0.
        wasm.extend_from_slice(&[3, 3, 2, 0, 0]);
        // Memory section: one memory, 1 page minimum.
        wasm.extend_from_slice(&[5, 3, 1, 0, 1]);
        let exports: [(&str, u8, u8); 4] = [
            ("memory", 2, 0),
            ("proxy_on_delete", 0, 0),
            ("proxy_on_log", 0, 1),
            ("proxy_on_response_headers", 0, 1),
        ];
        let mut section = vec![exports.len() as u8];
        for (name, kind, index) in exports {
            section.push(name.len() as u8);
            section.extend_from_slice(name.as_bytes());
            section.extend_from_slice(&[kind, index]);
        }
        wasm.push(EXPORT_SECTION);
        write_length(&mut wasm, section.len());
        wasm.extend_from_slice(&section);
        // Code section: two empty bodies.
        wasm.extend_from_slice(&[10, 7, 2, 2, 0, 0x0b, 2, 0, 0x0b]);
        wasm
    }

    #[test]
    fn unimplemented_callbacks_lose_their_exports_and_nothing_else_changes() {
        let original = module();
        let trimmed = without_unused_callbacks(&original, &["proxy_on_log"])
            .unwrap()
            .expect("proxy_on_response_headers is removed");
        assert_eq!(
            export_names(&trimmed),
            ["memory", "proxy_on_delete", "proxy_on_log"]
        );
        // Every other section is byte for byte the same: only the export section shrank.
        let removed_entry = 1 + "proxy_on_response_headers".len() + 2;
        assert_eq!(original.len() - trimmed.len(), removed_entry);
        assert_eq!(
            without_unused_callbacks(&trimmed, &["proxy_on_log"]).unwrap(),
            None
        );
    }

    #[test]
    fn not_a_module_is_an_error() {
        assert!(without_unused_callbacks(b"\0asm\x02\0\0\0", &[]).is_err());
        let mut truncated = module();
        truncated.truncate(truncated.len() - 3);
        assert!(without_unused_callbacks(&truncated, &[]).is_err());
    }
}
