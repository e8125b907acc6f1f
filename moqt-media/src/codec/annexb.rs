//! H.264 / H.265 bitstream forms.
//!
//! WebCodecs encoders configured with `format: "annexb"` (what `@moq/publish` does for `avc1` and
//! `hev1`) emit Annex B: NAL units each behind a `00 00 01` or `00 00 00 01` start code, with the
//! parameter sets (SPS/PPS, plus VPS for H.265) repeated in front of every keyframe and no
//! description in the catalog. MP4 stores NAL units behind 4-byte big-endian lengths and the
//! parameter sets in the sample entry's avcC / hvcC record. This module converts the former to
//! the latter and builds the records from the in-band parameter sets.

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::{Avcc, HvcCArray, Hvcc};

/// Whether a payload starts with an Annex B start code.
pub fn is_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// The NAL units of an Annex B payload, without start codes or trailing zero bytes.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &(_, body)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(data.len(), |&(code, _)| code);
        let mut nal = &data[body..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            out.push(nal);
        }
    }
    out
}

/// Rewrites an Annex B payload with 4-byte length prefixes.
pub fn to_length_prefixed(data: &[u8]) -> Bytes {
    let nals = nal_units(data);
    let mut out = BytesMut::with_capacity(data.len() + 4);
    for nal in nals {
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

/// The NAL unit type of an H.264 NAL unit header.
pub fn h264_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The NAL unit type of an H.265 NAL unit header.
pub fn h265_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// An avcC record built from the first SPS and PPS found in an Annex B payload.
pub fn avcc_from_annexb(data: &[u8]) -> Option<Avcc> {
    let nals = nal_units(data);
    let sps = nals.iter().find(|n| h264_type(n) == 7)?;
    let pps = nals.iter().find(|n| h264_type(n) == 8)?;
    Avcc::new(sps, pps).ok()
}

/// An hvcC record built from the first VPS, SPS and PPS found in an Annex B payload, with the
/// profile/tier/level fields read from the SPS.
pub fn hvcc_from_annexb(data: &[u8]) -> Option<Hvcc> {
    let nals = nal_units(data);
    let find = |t: u8| nals.iter().find(|n| h265_type(n) == t).map(|n| n.to_vec());
    let (vps, sps, pps) = (find(32)?, find(33)?, find(34)?);
    let rbsp = unescape(&sps);
    // NAL header (2 bytes), then sps_video_parameter_set_id(4) max_sub_layers_minus1(3)
    // temporal_id_nesting(1), then profile_tier_level: space(2) tier(1) profile_idc(5),
    // 32 compatibility flags, 48 constraint flags, level_idc(8).
    let ptl = rbsp.get(3..15)?;
    let mut hvcc = Hvcc {
        configuration_version: 1,
        general_profile_space: ptl[0] >> 6,
        general_tier_flag: (ptl[0] >> 5) & 1 == 1,
        general_profile_idc: ptl[0] & 0x1f,
        general_profile_compatibility_flags: [ptl[1], ptl[2], ptl[3], ptl[4]],
        general_constraint_indicator_flags: [ptl[5], ptl[6], ptl[7], ptl[8], ptl[9], ptl[10]],
        general_level_idc: ptl[11],
        chroma_format_idc: 1,
        length_size_minus_one: 3,
        temporal_id_nested: rbsp[2] & 1 == 1,
        num_temporal_layers: ((rbsp[2] >> 1) & 0x7) + 1,
        ..Hvcc::new()
    };
    for (t, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        hvcc.arrays.push(HvcCArray { completeness: true, nal_unit_type: t, nalus: vec![nal] });
    }
    Some(hvcc)
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}
