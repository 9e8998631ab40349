//! The release builds, for x86_64 and aarch64, stay what a `FROM scratch` image needs:
//! one static, stripped executable under 1 MiB for its machine. Read from the ELF
//! headers, without running anything.

use crate::common;

fn u16_at(bytes: &[u8], at: usize) -> usize {
    u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> usize {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_EXEC: usize = 2;
const EM_X86_64: usize = 62;
const EM_AARCH64: usize = 183;

#[test]
fn release_binary_is_a_static_stripped_executable_under_1_mib() {
    check(&common::static_binary(), EM_X86_64);
}

#[test]
fn aarch64_release_binary_is_a_static_stripped_executable_under_1_mib() {
    check(&common::aarch64_binary().1, EM_AARCH64);
}

fn check(path: &std::path::Path, machine: usize) {
    let elf = std::fs::read(path).expect("readable");
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    assert_eq!(elf[4], 2, "64-bit");
    assert_eq!(u16_at(&elf, 18), machine, "built for ELF machine {machine}");
    println!("{}: {} bytes", path.display(), elf.len());
    assert!(elf.len() <= 1 << 20, "{} bytes: over the 1 MiB budget", elf.len());

    // No interpreter and no dynamic section: nothing to load at run time, no shared
    // library needed; and not position-independent, so nothing to relocate at start.
    assert_eq!(u16_at(&elf, 16), ET_EXEC, "a plain (non-PIE) executable");
    let (phoff, phentsize, phnum) = (u64_at(&elf, 32), u16_at(&elf, 54), u16_at(&elf, 56));
    let segment_types: Vec<u32> = (0..phnum).map(|i| u32_at(&elf, phoff + i * phentsize)).collect();
    assert!(!segment_types.contains(&PT_INTERP), "has an interpreter: dynamically linked");
    assert!(!segment_types.contains(&PT_DYNAMIC), "has a dynamic section: {segment_types:?}");

    // Stripped: no symbol table among the sections.
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(&elf, 40), u16_at(&elf, 58), u16_at(&elf, 60), u16_at(&elf, 62));
    let names_at = u64_at(&elf, shoff + shstrndx * shentsize + 24);
    let section_names: Vec<String> = (0..shnum)
        .map(|i| {
            let start = names_at + u32_at(&elf, shoff + i * shentsize) as usize;
            let end = elf[start..].iter().position(|&b| b == 0).map_or(start, |n| start + n);
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect();
    assert!(section_names.iter().any(|n| n == ".text"), "section names were read: {section_names:?}");
    assert!(
        !section_names.iter().any(|n| n == ".symtab" || n.starts_with(".debug")),
        "not stripped: {section_names:?}"
    );
}
