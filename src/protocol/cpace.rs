//! CPace (draft-irtf-cfrg-cpace-13), suite `CPACE-P256_XMD:SHA-256_SSWU_NU_-SHA256`: the
//! balanced PAKE inside DSAPP revision 3 (protocols.md section 4). Only the pieces DSAPP uses,
//! named as in the draft: [`prepend_len`], [`lv_cat`], [`generator_string`],
//! [`calculate_generator`] (RFC 9380 `encode_to_curve` with `P256_XMD:SHA-256_SSWU_NU_`, from
//! RustCrypto's `p256`), [`scalar_mult`], [`scalar_mult_vfy`], [`transcript_ir`] and [`isk`].
//! The unit tests reproduce the draft's appendix B.5 vectors bit for bit.
//!
//! Points are the 65-byte SEC1 uncompressed encoding `04 | X | Y` here, as in the draft;
//! DSAPP's wire form (X | Y without the prefix) is the caller's business.

use p256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{NistP256, NonZeroScalar, ProjectivePoint, PublicKey};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// `G.DSI` of the suite.
pub const DSI: &[u8] = b"CPaceP256_XMD:SHA-256_SSWU_NU_";
/// SHA-256's input block size, `H.s_in_bytes`.
pub const S_IN_BYTES: usize = 64;
/// A SEC1 uncompressed point.
pub const POINT_BYTES: usize = 65;
/// `K`, the x coordinate, and ISK.
pub const SECRET_BYTES: usize = 32;

/// `prepend_len`: the LEB128 encoding of the length, then the data.
pub fn prepend_len(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 3);
    let mut len = data.len();
    loop {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.push((len & 0x7f) as u8 | 0x80);
        }
        len >>= 7;
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(data);
    out
}

/// `lv_cat`: every argument with its length prepended.
pub fn lv_cat(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&prepend_len(p));
    }
    out
}

/// `generator_string(G.DSI, PRS, CI, sid, H.s_in_bytes)`: zero padding fills the first hash
/// block after DSI and PRS. Holds PRS, hence zeroized.
pub fn generator_string(prs: &[u8], ci: &[u8], sid: &[u8]) -> Zeroizing<Vec<u8>> {
    let used = prepend_len(prs).len() + prepend_len(DSI).len();
    let zpad = vec![0u8; S_IN_BYTES.saturating_sub(1 + used)];
    let prs_lv = Zeroizing::new(prepend_len(prs));
    let mut out = Zeroizing::new(prepend_len(DSI));
    out.extend_from_slice(&prs_lv);
    out.extend_from_slice(&prepend_len(&zpad));
    out.extend_from_slice(&prepend_len(ci));
    out.extend_from_slice(&prepend_len(sid));
    out
}

/// `G.calculate_generator(H, PRS, CI, sid)`: `encode_to_curve(generator_string, DSI | "_DST")`.
pub fn calculate_generator(prs: &[u8], ci: &[u8], sid: &[u8]) -> ProjectivePoint {
    let gen_str = generator_string(prs, ci, sid);
    let mut dst = DSI.to_vec();
    dst.extend_from_slice(b"_DST");
    let dsts: [&[u8]; 1] = [&dst];
    NistP256::encode_from_bytes::<ExpandMsgXmd<Sha256>>(&[gen_str.as_slice()], &dsts)
        .expect("a 34-byte DST and a short message are valid for expand_message_xmd")
}

/// `G.sample_scalar()`: uniform in [1, order - 1].
pub fn sample_scalar() -> NonZeroScalar {
    NonZeroScalar::random(&mut OsRng)
}

/// `G.scalar_mult(y, g)`: the SEC1 uncompressed encoding of `y·g`.
pub fn scalar_mult(y: &NonZeroScalar, g: &ProjectivePoint) -> [u8; POINT_BYTES] {
    encode(&(*g * **y))
}

/// The SEC1 uncompressed encoding of a point that is not the identity.
pub fn encode(p: &ProjectivePoint) -> [u8; POINT_BYTES] {
    p.to_encoded_point(false)
        .as_bytes()
        .try_into()
        .expect("a point other than the identity encodes in 65 bytes")
}

/// `G.scalar_mult_vfy(y, X)`: `None` ("error", the draft's `G.I`) when `X` is not a valid
/// encoding of a point of the group other than the identity, or when `y·X` is the identity;
/// otherwise the 32-byte big-endian x coordinate of `y·X`.
pub fn scalar_mult_vfy(y: &NonZeroScalar, x: &[u8]) -> Option<Zeroizing<[u8; SECRET_BYTES]>> {
    let point = PublicKey::from_sec1_bytes(x).ok()?.to_projective();
    let product = (point * **y).to_encoded_point(false);
    let xc = product.x()?;
    let mut out = Zeroizing::new([0u8; SECRET_BYTES]);
    out.copy_from_slice(xc);
    Some(out)
}

/// `transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) | lv_cat(Yb, ADb)`.
pub fn transcript_ir(ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> Vec<u8> {
    lv_cat(&[ya, ada, yb, adb])
}

/// `ISK = H.hash(lv_cat(G.DSI | "_ISK", sid, K) | transcript)`.
pub fn isk(sid: &[u8], k: &[u8], transcript: &[u8]) -> Zeroizing<[u8; SECRET_BYTES]> {
    let mut dsi_isk = DSI.to_vec();
    dsi_isk.extend_from_slice(b"_ISK");
    let prefix = Zeroizing::new(lv_cat(&[&dsi_isk, sid, k]));
    let mut h = Sha256::new();
    h.update(prefix.as_slice());
    h.update(transcript);
    let mut out = Zeroizing::new([0u8; SECRET_BYTES]);
    out.copy_from_slice(&h.finalize());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).unwrap()
    }

    fn scalar(s: &str) -> NonZeroScalar {
        NonZeroScalar::try_from(unhex(s).as_slice()).unwrap()
    }

    // draft-irtf-cfrg-cpace-13, appendix B.5 (NIST P-256, SHA-256).
    const PRS: &[u8] = b"Password";
    const CI: &str = "6f630b425f726573706f6e6465720b415f696e69746961746f72";
    const SID: &str = "34b36454cab2e7842c389f7d88ecb7df";
    const GEN_STR: &str = "1e4350616365503235365f584d443a5348412d3235365f535357555f
        4e555f0850617373776f726417000000000000000000000000000000
        00000000000000001a6f630b425f726573706f6e6465720b415f696e
        69746961746f721034b36454cab2e7842c389f7d88ecb7df";
    const G: &str = "04eee577320b1c241a79419fcde5718c2b63f81ef8717d56a57d2fb2
        6b65a8beb63573b52605efb32ff4cf31aaef9a92df84e4e8408cc6c7
        cf27a535aad2b38a56";
    const YA_SCALAR: &str = "37574cfbf1b95ff6a8e2d7be462d4d01e6dde2618f34f4de9df869b24f532c5d";
    const YA: &str = "041f12ad5fc65010a24fc04c86197109a36df0e9ce85a7479e1e1364
        692fdace17ea5a634e19c207a5d52ead6c6817a163cf2f2fe3406c5d
        fdfc2ecdf8e42c5e16";
    const YB_SCALAR: &str = "e5672fc9eb4e721f41d80181ec4c9fd9886668acc48024d33c82bb102aecba52";
    const YB: &str = "046a51180b6ebabaf5ed0af8cd786886d93342bcae4c158ce1617a0a
        cc8ec354486f9ed2e9210913206d1e3f5e463d2d320c4f1f5ce8b677
        a7e38a26f752bf8f84";
    const K: &str = "3e0e2f8976fb8d0deee30aef4b5cd3631eed249af32f53d0dd009b5d7b8f6b6c";
    const TRANSCRIPT_IR: &str = "41041f12ad5fc65010a24fc04c86197109a36df0e9ce85a7479e1e13
        64692fdace17ea5a634e19c207a5d52ead6c6817a163cf2f2fe3406c
        5dfdfc2ecdf8e42c5e160341446141046a51180b6ebabaf5ed0af8cd
        786886d93342bcae4c158ce1617a0acc8ec354486f9ed2e921091320
        6d1e3f5e463d2d320c4f1f5ce8b677a7e38a26f752bf8f8403414462";
    const ISK_IR: &str = "9565ed286b6e3cf1f943fd31746f9a22935537025a1328d4980005ba984f0c39";

    #[test]
    fn string_utilities_match_appendix_a() {
        assert_eq!(hex::encode(prepend_len(b"")), "00");
        assert_eq!(hex::encode(prepend_len(b"1234")), "0431323334");
        let r127: Vec<u8> = (0..127).collect();
        assert_eq!(prepend_len(&r127)[0], 0x7f);
        assert_eq!(prepend_len(&r127).len(), 128);
        let r128: Vec<u8> = (0..128).collect();
        assert_eq!(&prepend_len(&r128)[..3], &[0x80, 0x01, 0x00]);
        assert_eq!(prepend_len(&r128).len(), 130);
        assert_eq!(
            hex::encode(lv_cat(&[b"1234", b"5", b"", b"678"])),
            "043132333401350003363738"
        );
        assert_eq!(
            hex::encode(transcript_ir(b"123", b"PartyA", b"234", b"PartyB")),
            "03313233065061727479410332333406506172747942"
        );
        assert_eq!(
            hex::encode(transcript_ir(b"3456", b"PartyA", b"2345", b"PartyB")),
            "043334353606506172747941043233343506506172747942"
        );
    }

    #[test]
    fn p256_generator_matches_b5_1() {
        let gs = generator_string(PRS, &unhex(CI), &unhex(SID));
        assert_eq!(hex::encode(gs.as_slice()), hex::encode(unhex(GEN_STR)));
        let g = calculate_generator(PRS, &unhex(CI), &unhex(SID));
        assert_eq!(hex::encode(encode(&g)), hex::encode(unhex(G)));
    }

    #[test]
    fn p256_messages_secret_and_isk_match_b5_2_to_b5_5() {
        let g = calculate_generator(PRS, &unhex(CI), &unhex(SID));
        let ya = scalar(YA_SCALAR);
        let yb = scalar(YB_SCALAR);
        let ya_pub = scalar_mult(&ya, &g);
        let yb_pub = scalar_mult(&yb, &g);
        assert_eq!(hex::encode(ya_pub), hex::encode(unhex(YA)));
        assert_eq!(hex::encode(yb_pub), hex::encode(unhex(YB)));
        let ka = scalar_mult_vfy(&ya, &yb_pub).unwrap();
        let kb = scalar_mult_vfy(&yb, &ya_pub).unwrap();
        assert_eq!(hex::encode(ka.as_ref()), K);
        assert_eq!(hex::encode(kb.as_ref()), K);
        let t = transcript_ir(&ya_pub, b"ADa", &yb_pub, b"ADb");
        assert_eq!(hex::encode(&t), hex::encode(unhex(TRANSCRIPT_IR)));
        assert_eq!(
            hex::encode(isk(&unhex(SID), ka.as_ref(), &t).as_ref()),
            ISK_IR
        );
    }

    #[test]
    fn scalar_mult_vfy_matches_b5_10_and_refuses_b5_11() {
        let s = scalar("f012501c091ff9b99a123fffe571d8bc01e8077ee581362e1bd213990835643b");
        let x = unhex(
            "0424648eb986c2be0af636455cef0550671d6bcd8aa26e0d72ffa1b1
             fd12ba4e0f78da2b6d2184f31af39e566aef127014b6936c9a37346d
             10a4ab2514faef5831",
        );
        assert_eq!(
            hex::encode(scalar_mult_vfy(&s, &x).unwrap().as_ref()),
            "f5a191f078c87c36633b78c701751159d56c59f3fe9105b5720673470f303ab9"
        );
        let y_i1 = unhex(
            "0424648eb986c2be0af636455cef0550671d6bcd8aa26e0d72ffa1b1
             fd12ba4e0f78da2b6d2184f31af39e566aef127014b6936c9a37346d
             10a4ab2514faef5857",
        );
        assert!(scalar_mult_vfy(&s, &y_i1).is_none());
        assert!(scalar_mult_vfy(&s, &[0x00]).is_none());
        // (0, 0) is not on the curve either.
        let mut zero = [0u8; 65];
        zero[0] = 4;
        assert!(scalar_mult_vfy(&s, &zero).is_none());
    }
}
