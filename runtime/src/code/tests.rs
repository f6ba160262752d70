//! Loader tests on hand-built ELF objects: every relocation kind on real machine code, and every
//! kind of malformed input (garbage, truncation, unknown symbols and relocation types, offsets
//! out of range, byte flips) reported as a `CodeError`, never a crash.

use object::elf;

use super::{CodeError, CodeModule, GenFn};

/// A symbol of the test object.
struct SymDef {
    name: &'static str,
    shndx: u16,
    value: u64,
    size: u64,
    global: bool,
    kind: u8,
}

/// A relocation of `.text`: offset, symbol (1-based index into `Obj::symbols`), type, addend.
struct RelDef(u64, u32, u32, i64);

/// A relocatable object with `.text`, `.rodata`, `.rela.text`, `.symtab`, `.strtab`, `.shstrtab`.
struct Obj {
    text: Vec<u8>,
    rodata: Vec<u8>,
    symbols: Vec<SymDef>,
    relocs: Vec<RelDef>,
}

const TEXT: u16 = 1;
const RODATA: u16 = 2;

fn push16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn push32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn push64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn pad_to(out: &mut Vec<u8>, align: usize) {
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

/// Appends `name` to a string table, returning its offset.
fn add_str(table: &mut Vec<u8>, name: &str) -> u32 {
    let at = table.len() as u32;
    table.extend_from_slice(name.as_bytes());
    table.push(0);
    at
}

impl Obj {
    fn build(&self) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 24];
        for s in &self.symbols {
            let name = add_str(&mut strtab, s.name);
            push32(&mut symtab, name);
            let bind = if s.global {
                elf::STB_GLOBAL
            } else {
                elf::STB_LOCAL
            };
            symtab.push((bind.0 << 4) | s.kind);
            symtab.push(0);
            push16(&mut symtab, s.shndx);
            push64(&mut symtab, s.value);
            push64(&mut symtab, s.size);
        }
        let first_global = 1 + self.symbols.iter().take_while(|s| !s.global).count() as u32;
        let mut rela = Vec::new();
        for r in &self.relocs {
            push64(&mut rela, r.0);
            push64(&mut rela, (u64::from(r.1) << 32) | u64::from(r.2));
            push64(&mut rela, r.3 as u64);
        }
        let mut shstrtab = vec![0u8];
        let names: Vec<u32> = [
            ".text",
            ".rodata",
            ".rela.text",
            ".symtab",
            ".strtab",
            ".shstrtab",
        ]
        .iter()
        .map(|n| add_str(&mut shstrtab, n))
        .collect();

        let mut out = vec![0u8; 64];
        let place = |out: &mut Vec<u8>, bytes: &[u8], align: usize| {
            pad_to(out, align);
            let at = out.len() as u64;
            out.extend_from_slice(bytes);
            (at, bytes.len() as u64)
        };
        let text = place(&mut out, &self.text, 16);
        let rodata = place(&mut out, &self.rodata, 8);
        let rela_at = place(&mut out, &rela, 8);
        let sym_at = place(&mut out, &symtab, 8);
        let str_at = place(&mut out, &strtab, 1);
        let shstr_at = place(&mut out, &shstrtab, 1);
        pad_to(&mut out, 8);
        let shoff = out.len() as u64;
        // (name, type, flags, (offset, size), link, info, align, entsize)
        let headers = [
            (0, 0, 0, (0, 0), 0, 0, 0, 0),
            (
                names[0],
                elf::SHT_PROGBITS.0,
                elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0,
                text,
                0,
                0,
                16,
                0,
            ),
            (
                names[1],
                elf::SHT_PROGBITS.0,
                elf::SHF_ALLOC.0,
                rodata,
                0,
                0,
                8,
                0,
            ),
            (
                names[2],
                elf::SHT_RELA.0,
                elf::SHF_INFO_LINK.0,
                rela_at,
                4,
                1,
                8,
                24,
            ),
            (
                names[3],
                elf::SHT_SYMTAB.0,
                0,
                sym_at,
                5,
                first_global,
                8,
                24,
            ),
            (names[4], elf::SHT_STRTAB.0, 0, str_at, 0, 0, 1, 0),
            (names[5], elf::SHT_STRTAB.0, 0, shstr_at, 0, 0, 1, 0),
        ];
        for (name, ty, flags, (offset, size), link, info, align, entsize) in headers {
            push32(&mut out, name);
            push32(&mut out, ty);
            push64(&mut out, flags);
            push64(&mut out, 0);
            push64(&mut out, offset);
            push64(&mut out, size);
            push32(&mut out, link);
            push32(&mut out, info);
            push64(&mut out, align);
            push64(&mut out, entsize);
        }
        let mut header = Vec::new();
        header.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        header.extend_from_slice(&[0; 8]);
        push16(&mut header, elf::ET_REL.0);
        push16(&mut header, elf::EM_X86_64.0);
        push32(&mut header, 1);
        push64(&mut header, 0);
        push64(&mut header, 0);
        push64(&mut header, shoff);
        push32(&mut header, 0);
        for v in [64u16, 0, 0, 64, headers.len() as u16, 6] {
            push16(&mut header, v);
        }
        out[..64].copy_from_slice(&header);
        out
    }
}

fn sym(name: &'static str, shndx: u16, value: u64, global: bool, kind: u8) -> SymDef {
    SymDef {
        name,
        shndx,
        value,
        size: 0,
        global,
        kind,
    }
}

/// Six tiny functions, one per relocation kind, plus a local alias and a constant in `.rodata`.
fn sample() -> Obj {
    let mut text = Vec::new();
    let at = |code: &[u8], text: &mut Vec<u8>| {
        pad_to(text, 16);
        text.extend_from_slice(code);
    };
    at(&[0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xe0], &mut text); // 0: movabs rax; jmp rax
    at(&[0xe9, 0, 0, 0, 0], &mut text); // 16: jmp rel32 (PLT32)
    at(&[0xff, 0x25, 0, 0, 0, 0], &mut text); // 32: jmp [rip + GOT]
    at(&[0xf3, 0x0f, 0x10, 0x05, 0, 0, 0, 0, 0xc3], &mut text); // 48: movss xmm0, [rip+k]; ret
    at(&[0xb8, 0, 0, 0, 0, 0x66, 0x0f, 0x6e, 0xc0, 0xc3], &mut text); // 64: mov eax; movd; ret
    at(&[0xe9, 0, 0, 0, 0], &mut text); // 80: jmp f_const (PC32)
    let mut rodata = vec![0u8; 4];
    rodata.extend_from_slice(&2.5f32.to_le_bytes());
    let func = elf::STT_FUNC.0;
    Obj {
        text,
        rodata,
        symbols: vec![
            sym("two_and_half", RODATA, 4, false, elf::STT_OBJECT.0), // 1
            sym("helper", TEXT, 48, false, func),                     // 2
            sym("f_abs", TEXT, 0, true, func),                        // 3
            sym("f_plt", TEXT, 16, true, func),                       // 4
            sym("f_got", TEXT, 32, true, func),                       // 5
            sym("f_const", TEXT, 48, true, func),                     // 6
            sym("f_pi", TEXT, 64, true, func),                        // 7
            sym("f_internal", TEXT, 80, true, func),                  // 8
            sym("kiln_rt_expf", 0, 0, true, elf::STT_NOTYPE.0),       // 9
            sym("kiln_rt_logf", 0, 0, true, elf::STT_NOTYPE.0),       // 10
            sym(
                "pi_bits",
                elf::SHN_ABS.0,
                0x4049_0fdb,
                true,
                elf::STT_NOTYPE.0,
            ), // 11
        ],
        relocs: vec![
            RelDef(2, 9, elf::R_X86_64_64.0, 0),
            RelDef(17, 9, elf::R_X86_64_PLT32.0, -4),
            RelDef(34, 10, elf::R_X86_64_GOTPCREL.0, -4),
            RelDef(52, 1, elf::R_X86_64_PC32.0, -4),
            RelDef(65, 11, elf::R_X86_64_32.0, 0),
            RelDef(81, 6, elf::R_X86_64_PC32.0, -4),
            RelDef(0, 0, elf::R_X86_64_NONE.0, 0),
        ],
    }
}

fn unary(module: &CodeModule, name: &str) -> extern "C" fn(f32) -> f32 {
    let f: GenFn = module
        .function(name)
        .unwrap_or_else(|| panic!("no `{name}`"));
    // SAFETY: the test functions take one f32 in xmm0 and return one in xmm0 (System V), so
    // viewing them with that signature is what they were assembled for.
    unsafe { std::mem::transmute::<GenFn, extern "C" fn(f32) -> f32>(f) }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "Miri cannot mprotect memory executable nor run machine code"
)]
fn every_relocation_kind_is_applied_to_running_code() {
    let module = CodeModule::load(&sample().build()).unwrap();
    let names: Vec<&str> = module.symbols().collect();
    assert_eq!(
        names,
        ["f_abs", "f_const", "f_got", "f_internal", "f_pi", "f_plt"],
        "local symbols are not exported"
    );
    assert!(module.function("helper").is_none());
    assert!(module.function("kiln_rt_expf").is_none());
    assert_eq!(unary(&module, "f_abs")(1.0), 1f32.exp()); // R_X86_64_64
    assert_eq!(unary(&module, "f_plt")(2.0), 2f32.exp()); // PLT32 (through a veneer if far)
    assert_eq!(unary(&module, "f_got")(2.0), 2f32.ln()); // GOTPCREL
    assert_eq!(unary(&module, "f_const")(0.0), 2.5); // PC32 into .rodata
    assert_eq!(unary(&module, "f_pi")(0.0), std::f32::consts::PI); // R_X86_64_32, SHN_ABS
    assert_eq!(unary(&module, "f_internal")(0.0), 2.5); // PC32 to a function
    assert!(module.code_size() >= 96);
    assert!(format!("{module:?}").contains("f_abs"));
}

#[cfg(target_os = "linux")]
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri cannot mprotect memory executable nor run machine code"
)]
fn code_is_mapped_read_execute_only() {
    let module = CodeModule::load(&sample().build()).unwrap();
    let addr = module.function("f_abs").unwrap() as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|line| {
            let range = line.split_whitespace().next().unwrap_or("");
            let (lo, hi) = range.split_once('-').unwrap_or(("0", "0"));
            let lo = usize::from_str_radix(lo, 16).unwrap_or(0);
            let hi = usize::from_str_radix(hi, 16).unwrap_or(0);
            lo <= addr && addr < hi
        })
        .expect("the code's page is mapped");
    let perms = line.split_whitespace().nth(1).unwrap();
    assert_eq!(perms, "r-xp", "{line}");
}

#[test]
fn module_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CodeModule>();
}

#[test]
fn garbage_and_truncated_objects_are_errors() {
    assert!(matches!(
        CodeModule::load(&[]),
        Err(CodeError::Parse { .. })
    ));
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = CodeModule::load(&garbage).unwrap_err();
    assert!(matches!(err, CodeError::Parse { .. }), "{err}");
    let object = sample().build();
    for len in 0..object.len() {
        assert!(
            CodeModule::load(&object[..len]).is_err(),
            "truncated to {len}"
        );
    }
    // Section data past the end of the file.
    let mut bad = object.clone();
    let shoff = u64::from_le_bytes(bad[40..48].try_into().unwrap()) as usize;
    let text_sh_size = shoff + 64 + 32;
    bad[text_sh_size..text_sh_size + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let err = CodeModule::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("`.text`") && err.contains("past the end"),
        "{err}"
    );
}

#[test]
fn wrong_machine_and_type_are_reported() {
    let object = sample().build();
    let mut arm = object.clone();
    arm[18..20].copy_from_slice(&elf::EM_AARCH64.0.to_le_bytes());
    let err = CodeModule::load(&arm).unwrap_err().to_string();
    assert!(err.contains("machine type 183"), "{err}");
    let mut exec = object;
    exec[16..18].copy_from_slice(&elf::ET_EXEC.0.to_le_bytes());
    let err = CodeModule::load(&exec).unwrap_err().to_string();
    assert!(err.contains("relocatable"), "{err}");
}

#[test]
fn unknown_symbols_and_relocations_are_named() {
    let mut obj = sample();
    obj.symbols[8].name = "mystery_fn";
    let err = CodeModule::load(&obj.build()).unwrap_err();
    assert!(
        matches!(err, CodeError::UnknownSymbol { ref symbol, offset: 2, .. } if symbol == "mystery_fn")
    );
    assert!(err.to_string().contains("`.text`+0x2"), "{err}");

    let mut obj = sample();
    obj.relocs[3].2 = elf::R_X86_64_GOTOFF64.0;
    let err = CodeModule::load(&obj.build()).unwrap_err().to_string();
    assert!(
        err.contains("R_X86_64_GOTOFF64") && err.contains("two_and_half"),
        "{err}"
    );

    let mut obj = sample();
    obj.relocs[0].0 = 80; // 8 bytes at 80 end past the 85-byte `.text`
    let err = CodeModule::load(&obj.build()).unwrap_err();
    assert!(
        matches!(
            err,
            CodeError::RelocationOffset {
                offset: 80,
                size: 8,
                ..
            }
        ),
        "{err}"
    );

    let mut obj = sample();
    obj.relocs[1].1 = 40; // no such symbol
    let err = CodeModule::load(&obj.build()).unwrap_err().to_string();
    assert!(err.contains("#40"), "{err}");

    let mut obj = sample();
    obj.symbols[4].value = 4096; // f_got (referenced by no relocation) past the end
    let err = CodeModule::load(&obj.build()).unwrap_err().to_string();
    assert!(
        err.contains("f_got") && err.contains("past the end"),
        "{err}"
    );

    // An absolute 32-bit field whose value cannot fit.
    let mut obj = sample();
    obj.symbols[10].value = 1 << 40;
    let err = CodeModule::load(&obj.build()).unwrap_err();
    assert!(
        matches!(err, CodeError::RelocationOverflow { bits: 32, .. }),
        "{err}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "loads objects (mprotect), which Miri cannot")]
fn byte_flips_never_crash_the_loader() {
    let object = sample().build();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut loaded = 0;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = object.clone();
        let at = (state % bad.len() as u64) as usize;
        bad[at] ^= 1 << ((state >> 32) % 8);
        if CodeModule::load(&bad).is_ok() {
            loaded += 1;
        }
    }
    // Flips inside code bytes or padding still load; header flips mostly do not.
    assert!(loaded > 0 && loaded < 3000, "{loaded}");
}
