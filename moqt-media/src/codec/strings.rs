//! WebCodecs codec strings from codec configuration records, and back.
//!
//! - H.264: `avc1.PPCCLL`, three bytes of the avcC record (profile, constraint flags, level) as
//!   two lowercase hex digits each.
//! - H.265 (ISO/IEC 14496-15 annex E): `hvc1.` + profile space letter (none, `A`, `B`, `C`) +
//!   profile idc + `.` + the 32 compatibility flags bit-reversed in hex without leading zeros +
//!   `.` + `L`/`H` (tier) + level idc + one `.XX` per constraint byte, trailing zero bytes left
//!   out.
//! - AV1: `av01.P.LLT.DD` (profile, two-digit level, `M`/`H` tier, two-digit bit depth), with
//!   `.M.XYZ.CP.TC.MC.F` appended only when monochrome or chroma subsampling is not 4:2:0.
//! - VP9: `vp09.PP.LL.DD` (profile, level, bit depth), with `.CC.CP.TC.MC.FF` appended only for
//!   4:2:2 / 4:4:4 or full range.
//! - AAC: `mp4a.40.N` with N the decimal audio object type, for object type indication 0x40;
//!   `mp4a.66`/`67`/`68` for the MPEG-2 AAC indications.

use mp4_atom::{Av1c, Avcc, Colr, Hvcc, VpcC};

/// `avc1.PPCCLL` / `avc3.PPCCLL` from an avcC record.
pub fn avc_string(prefix: &str, avcc: &Avcc) -> String {
    format!(
        "{prefix}.{:02x}{:02x}{:02x}",
        avcc.avc_profile_indication, avcc.profile_compatibility, avcc.avc_level_indication
    )
}

/// `hvc1.…` / `hev1.…` from an hvcC record.
pub fn hevc_string(prefix: &str, hvcc: &Hvcc) -> String {
    let space = match hvcc.general_profile_space {
        0 => "",
        1 => "A",
        2 => "B",
        _ => "C",
    };
    let compat = u32::from_be_bytes(hvcc.general_profile_compatibility_flags).reverse_bits();
    let tier = if hvcc.general_tier_flag { 'H' } else { 'L' };
    let flags = &hvcc.general_constraint_indicator_flags;
    let keep = flags.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let mut out = format!("{prefix}.{space}{}.{compat:X}.{tier}{}", hvcc.general_profile_idc, hvcc.general_level_idc);
    for b in &flags[..keep] {
        out.push_str(&format!(".{b:X}"));
    }
    out
}

/// `av01.…` from an av1C record (and the sample entry's colour box, if any).
pub fn av1_string(av1c: &Av1c, colr: Option<&Colr>) -> String {
    let depth = match (av1c.high_bitdepth, av1c.twelve_bit) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    let tier = if av1c.seq_tier_0 { 'H' } else { 'M' };
    let mut out = format!("av01.{}.{:02}{tier}.{depth:02}", av1c.seq_profile, av1c.seq_level_idx_0);
    let default_chroma = !av1c.monochrome && av1c.chroma_subsampling_x && av1c.chroma_subsampling_y;
    if !default_chroma {
        let (cp, tc, mc, full) = match colr {
            Some(Colr::Nclx { colour_primaries, transfer_characteristics, matrix_coefficients, full_range_flag }) => {
                (*colour_primaries, *transfer_characteristics, *matrix_coefficients, *full_range_flag)
            }
            _ => (1u16, 1u16, 1u16, false),
        };
        out.push_str(&format!(
            ".{}.{}{}{}.{cp:02}.{tc:02}.{mc:02}.{}",
            u8::from(av1c.monochrome),
            u8::from(av1c.chroma_subsampling_x),
            u8::from(av1c.chroma_subsampling_y),
            av1c.chroma_sample_position,
            u8::from(full)
        ));
    }
    out
}

/// `vp09.…` from a vpcC record.
pub fn vp9_string(vpcc: &VpcC) -> String {
    let mut out = format!("vp09.{:02}.{:02}.{:02}", vpcc.profile, vpcc.level, vpcc.bit_depth);
    if vpcc.chroma_subsampling > 1 || vpcc.video_full_range_flag {
        // "Unspecified" (2) colour values are written as the BT.709 defaults (1).
        let unspec = |v: u8| if v == 2 { 1 } else { v };
        out.push_str(&format!(
            ".{:02}.{:02}.{:02}.{:02}.{:02}",
            vpcc.chroma_subsampling,
            unspec(vpcc.color_primaries),
            unspec(vpcc.transfer_characteristics),
            unspec(vpcc.matrix_coefficients),
            u8::from(vpcc.video_full_range_flag)
        ));
    }
    out
}

/// `mp4a.40.N` (or the MPEG-2 AAC forms) from the esds object type indication and the
/// AudioSpecificConfig's audio object type. `None` for non-AAC indications.
pub fn aac_string(object_type_indication: u8, audio_object_type: u8) -> Option<String> {
    match object_type_indication {
        0x40 => Some(format!("mp4a.40.{audio_object_type}")),
        0x66..=0x68 => Some(format!("mp4a.{object_type_indication:02x}")),
        _ => None,
    }
}

/// The fields of an AV1 codec string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Av1String {
    /// seq_profile.
    pub profile: u8,
    /// seq_level_idx_0.
    pub level: u8,
    /// High tier.
    pub high_tier: bool,
    /// Bit depth (8, 10, 12).
    pub bit_depth: u8,
    /// Monochrome.
    pub monochrome: bool,
    /// chroma_subsampling_x.
    pub subsampling_x: bool,
    /// chroma_subsampling_y.
    pub subsampling_y: bool,
    /// chroma_sample_position.
    pub sample_position: u8,
}

/// Parses `av01.P.LLT.DD[.M.XYZ…]`.
pub fn parse_av1(codec: &str) -> Option<Av1String> {
    let mut parts = codec.strip_prefix("av01.")?.split('.');
    let profile = parts.next()?.parse().ok()?;
    let lt = parts.next()?;
    if lt.len() < 2 {
        return None;
    }
    let (level, tier) = lt.split_at(lt.len() - 1);
    let level = level.parse().ok()?;
    let high_tier = match tier {
        "M" => false,
        "H" => true,
        _ => return None,
    };
    let bit_depth = parts.next()?.parse().ok()?;
    let mut out = Av1String {
        profile,
        level,
        high_tier,
        bit_depth,
        monochrome: false,
        subsampling_x: true,
        subsampling_y: true,
        sample_position: 0,
    };
    if let (Some(mono), Some(xyz)) = (parts.next(), parts.next()) {
        let d: Vec<u8> = xyz.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        if d.len() != 3 || d.iter().any(|v| *v > 3) {
            return None;
        }
        out.monochrome = mono == "1";
        out.subsampling_x = d[0] == 1;
        out.subsampling_y = d[1] == 1;
        out.sample_position = d[2];
    }
    Some(out)
}

/// The fields of a VP9 codec string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9String {
    /// Profile 0-3.
    pub profile: u8,
    /// Level (10 = 1.0 …).
    pub level: u8,
    /// Bit depth (8, 10, 12).
    pub bit_depth: u8,
    /// vpcC chroma_subsampling (default 1: 4:2:0 colocated).
    pub chroma_subsampling: u8,
    /// Colour primaries.
    pub color_primaries: u8,
    /// Transfer characteristics.
    pub transfer_characteristics: u8,
    /// Matrix coefficients.
    pub matrix_coefficients: u8,
    /// Full-range flag.
    pub full_range: bool,
}

/// Parses `vp09.PP.LL.DD[.CC.cp.tc.mc.FF]`.
pub fn parse_vp9(codec: &str) -> Option<Vp9String> {
    let nums: Vec<u8> = codec.strip_prefix("vp09.")?.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let get = |i: usize, default: u8| nums.get(i).copied().unwrap_or(default);
    if nums.len() < 3 {
        return None;
    }
    Some(Vp9String {
        profile: nums[0],
        level: nums[1],
        bit_depth: nums[2],
        chroma_subsampling: get(3, 1),
        color_primaries: get(4, 1),
        transfer_characteristics: get(5, 1),
        matrix_coefficients: get(6, 1),
        full_range: get(7, 0) == 1,
    })
}
