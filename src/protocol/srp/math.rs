//! SRP-6a (RFC 5054 with the formulas of protocols.md section 3), generic over the hash and
//! the group so that the same code reproduces both our SHA-256 / 2048-bit vector and RFC 5054
//! Appendix B (SHA-1, 1024-bit). Modular exponentiation is constant time (crypto-bigint,
//! Montgomery form); secrets are zeroized when dropped.
//!
//! Powers of the generator (g^a, g^b, g^x: one of the three exponentiations in each SRP
//! exchange, and the verifier) use a fixed-base table built once per group: with
//! g^(d * 16^k) precomputed for every 4-bit digit d and position k, g^e is 64 Montgomery
//! multiplications instead of 256 squarings and 64 multiplications. Every table entry of a
//! row is read for every digit (a constant-time select), so neither the time nor the memory
//! access pattern depends on the exponent.

use std::sync::Arc;

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::subtle::{ConditionallySelectable, ConstantTimeEq};
use crypto_bigint::{Encoding, NonZero, U2048};
use sha2::Digest;
use zeroize::Zeroizing;

/// A group: the prime N, generator g, and the byte width of PAD().
#[derive(Clone)]
pub struct Group {
    pub n: U2048,
    pub g: U2048,
    pub width: usize,
    params: DynResidueParams<{ U2048::LIMBS }>,
    powers_of_g: Arc<FixedBase>,
}

/// Exponents are at most this many bits: the ephemerals a and b are 32 random bytes, and x
/// and u are hash outputs (SHA-256 at most). The bound is public, so bounding the
/// exponentiation to it keeps it constant time while skipping 1792 bits of leading zeros.
pub const EXPONENT_BITS: usize = 256;

impl Group {
    fn new(n: U2048, width: usize) -> Self {
        let g = U2048::from_u8(2);
        let params = DynResidueParams::new(&n);
        Group {
            n,
            g,
            width,
            params,
            powers_of_g: Arc::new(FixedBase::new(&g, params)),
        }
    }
}

/// Bits of the exponent one table digit covers.
const DIGIT_BITS: usize = 4;
const DIGITS: usize = 1 << DIGIT_BITS;
const POSITIONS: usize = EXPONENT_BITS / DIGIT_BITS;

/// `row[k][d] = base^(d * 16^k)` in Montgomery form, for exponents of [`EXPONENT_BITS`] bits
/// (64 rows of 16 entries: 256 KiB for a 2048-bit group, built with about 1,000
/// multiplications).
struct FixedBase {
    params: DynResidueParams<{ U2048::LIMBS }>,
    rows: Vec<[U2048; DIGITS]>,
}

impl FixedBase {
    fn new(base: &U2048, params: DynResidueParams<{ U2048::LIMBS }>) -> Self {
        let one = DynResidue::one(params);
        let mut step = DynResidue::new(base, params);
        let rows = (0..POSITIONS)
            .map(|_| {
                let mut row = [U2048::ZERO; DIGITS];
                let mut power = one;
                for entry in row.iter_mut() {
                    *entry = *power.as_montgomery();
                    power *= step;
                }
                // power = step^16: the next position's unit.
                step = power;
                row
            })
            .collect();
        FixedBase { params, rows }
    }

    /// `base^e` for the low [`EXPONENT_BITS`] bits of `e` (the bound `pow_bounded_exp`
    /// applies too), in constant time: one multiplication per digit, each by an entry
    /// selected by reading the whole row.
    fn pow(&self, e: &U2048) -> DynResidue<{ U2048::LIMBS }> {
        let bytes = Zeroizing::new(e.to_le_bytes());
        let mut acc = DynResidue::one(self.params);
        for (k, row) in self.rows.iter().enumerate() {
            let byte = bytes[k * DIGIT_BITS / 8];
            let digit = (byte >> ((k * DIGIT_BITS) % 8)) & (DIGITS as u8 - 1);
            let mut entry = Zeroizing::new(U2048::ZERO);
            for (d, candidate) in row.iter().enumerate() {
                entry.conditional_assign(candidate, (d as u8).ct_eq(&digit));
            }
            acc *= DynResidue::from_montgomery(*entry, self.params);
        }
        acc
    }
}

/// RFC 5054 Appendix A, 2048-bit group, g = 2.
pub fn group_2048() -> Group {
    static GROUP: std::sync::OnceLock<Group> = std::sync::OnceLock::new();
    GROUP.get_or_init(build_2048).clone()
}

fn build_2048() -> Group {
    Group::new(
        U2048::from_be_hex(concat!(
            "AC6BDB41324A9A9BF166DE5E1389582FAF72B6651987EE07FC3192943DB56050",
            "A37329CBB4A099ED8193E0757767A13DD52312AB4B03310DCD7F48A9DA04FD50",
            "E8083969EDB767B0CF6095179A163AB3661A05FBD5FAAAE82918A9962F0B93B8",
            "55F97993EC975EEAA80D740ADBF4FF747359D041D5C33EA71D281E446B14773B",
            "CA97B43A23FB801676BD207A436C6481F1D2B9078717461A5B9D32E688F87748",
            "544523B524B0D57D5EA77A2775D2ECFA032CFBDBF52FB37861602790",
            "04E57AE6AF874E7303CE53299CCC041C7BC308D82A5698F3A8D0C38271AE35F8",
            "E9DBFBB694B5C803D89F7AE435DE236D525F54759B65E372FCD68EF20FA7111F",
            "9E4AFF73"
        )),
        256,
    )
}

/// RFC 5054 Appendix A, 1024-bit group, g = 2 (for the Appendix B test vector).
pub fn group_1024() -> Group {
    let mut wide = [0u8; 256];
    let n = hex::decode(concat!(
        "EEAF0AB9ADB38DD69C33F80AFA8FC5E86072618775FF3C0B9EA2314C9C256576",
        "D674DF7496EA81D3383B4813D692C6E0E0D5D8E250B98BE48E495C1D6089DAD1",
        "5DC7D7B46154D6B6CE8EF4AD69B15D4982559B297BCF1885C529F566660E57EC",
        "68EDBC3C05726CC02FD4CBF4976EAA9AFD5138FE8376435B9FC61D2FC0EB06E3"
    ))
    .expect("a hex constant");
    wide[256 - n.len()..].copy_from_slice(&n);
    Group::new(U2048::from_be_slice(&wide), 128)
}

/// Why a peer's value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrpError {
    #[error("the public value is zero modulo N")]
    ZeroPublic,
    #[error("the public value is longer than the group")]
    TooLong,
    #[error("the scrambling parameter u is zero")]
    ZeroScrambler,
}

impl Group {
    fn residue(&self, x: &U2048) -> DynResidue<{ U2048::LIMBS }> {
        DynResidue::new(&self.reduce(x), self.params)
    }

    fn reduce(&self, x: &U2048) -> U2048 {
        x.rem(&NonZero::new(self.n).expect("N is not zero"))
    }

    /// PAD(x): big-endian, left-padded to the group width.
    pub fn pad(&self, x: &U2048) -> Vec<u8> {
        x.to_be_bytes()[256 - self.width..].to_vec()
    }

    /// Parses a big-endian value of at most the group width.
    pub fn parse(&self, bytes: &[u8]) -> Result<U2048, SrpError> {
        if bytes.len() > self.width {
            // Leading zero bytes beyond the width are tolerated.
            let extra = bytes.len() - self.width;
            if bytes[..extra].iter().any(|&b| b != 0) {
                return Err(SrpError::TooLong);
            }
            return self.parse(&bytes[extra..]);
        }
        let mut wide = [0u8; 256];
        wide[256 - bytes.len()..].copy_from_slice(bytes);
        Ok(U2048::from_be_slice(&wide))
    }

    /// `base^exp mod N` for an exponent of at most [`EXPONENT_BITS`] bits: crypto-bigint's
    /// own exponentiation, the oracle the fixed-base table is tested against.
    #[cfg(test)]
    fn pow(&self, base: &U2048, exp: &U2048) -> U2048 {
        self.residue(base)
            .pow_bounded_exp(exp, EXPONENT_BITS)
            .retrieve()
    }
}

fn h<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

fn int(bytes: &[u8]) -> U2048 {
    let mut wide = [0u8; 256];
    wide[256 - bytes.len()..].copy_from_slice(bytes);
    U2048::from_be_slice(&wide)
}

/// The SRP-6a computations over one group and hash.
pub struct Srp<D> {
    pub group: Group,
    _hash: std::marker::PhantomData<D>,
}

/// What both sides derive from one exchange.
pub struct Session {
    pub key: Zeroizing<Vec<u8>>,
    pub m1: Vec<u8>,
    pub m2: Vec<u8>,
}

impl<D: Digest> Srp<D> {
    pub fn new(group: Group) -> Self {
        Srp {
            group,
            _hash: std::marker::PhantomData,
        }
    }

    /// `k = H(PAD(N) | PAD(g))`.
    pub fn k(&self) -> U2048 {
        int(&h::<D>(&[
            &self.group.pad(&self.group.n),
            &self.group.pad(&self.group.g),
        ]))
    }

    /// `x = H(s | H(I | ":" | P))`.
    pub fn x(&self, salt: &[u8], identity: &[u8], password: &[u8]) -> Zeroizing<U2048> {
        let inner = Zeroizing::new(h::<D>(&[identity, b":", password]));
        let outer = Zeroizing::new(h::<D>(&[salt, &inner]));
        Zeroizing::new(int(&outer))
    }

    /// `v = g^x mod N`.
    pub fn verifier(&self, x: &U2048) -> U2048 {
        self.group.powers_of_g.pow(x).retrieve()
    }

    /// `A = g^a mod N`.
    pub fn client_public(&self, a: &U2048) -> U2048 {
        self.group.powers_of_g.pow(a).retrieve()
    }

    /// `B = (k*v + g^b) mod N`.
    pub fn server_public(&self, v: &U2048, b: &U2048) -> U2048 {
        let kv = self.group.residue(&self.k()) * self.group.residue(v);
        (kv + self.group.powers_of_g.pow(b)).retrieve()
    }

    /// `u = H(PAD(A) | PAD(B))`, refusing zero.
    pub fn u(&self, a_pub: &U2048, b_pub: &U2048) -> Result<U2048, SrpError> {
        let u = int(&h::<D>(&[&self.group.pad(a_pub), &self.group.pad(b_pub)]));
        if u == U2048::ZERO {
            return Err(SrpError::ZeroScrambler);
        }
        Ok(u)
    }

    /// Refuses a peer's public value that is zero modulo N.
    pub fn check_public(&self, value: &U2048) -> Result<(), SrpError> {
        if bool::from(self.group.reduce(value).ct_eq(&U2048::ZERO)) {
            return Err(SrpError::ZeroPublic);
        }
        Ok(())
    }

    /// Server: `S = (A * v^u)^b mod N`.
    pub fn server_premaster(
        &self,
        a_pub: &U2048,
        v: &U2048,
        u: &U2048,
        b: &U2048,
    ) -> Result<Zeroizing<U2048>, SrpError> {
        self.check_public(a_pub)?;
        let vu = self.group.residue(v).pow_bounded_exp(u, EXPONENT_BITS);
        let base = self.group.residue(a_pub) * vu;
        Ok(Zeroizing::new(
            base.pow_bounded_exp(b, EXPONENT_BITS).retrieve(),
        ))
    }

    /// Client: `S = (B - k*g^x)^(a + u*x) mod N`.
    pub fn client_premaster(
        &self,
        b_pub: &U2048,
        x: &U2048,
        a: &U2048,
        u: &U2048,
    ) -> Result<Zeroizing<U2048>, SrpError> {
        self.check_public(b_pub)?;
        let gx = self.group.powers_of_g.pow(x);
        let base = self.group.residue(b_pub) - self.group.residue(&self.k()) * gx;
        // a, u and x are at most 256 bits each, so a + u*x has at most 513 bits.
        let exp = Zeroizing::new(a.wrapping_add(&u.wrapping_mul(x)));
        Ok(Zeroizing::new(
            base.pow_bounded_exp(&exp, 2 * EXPONENT_BITS + 1).retrieve(),
        ))
    }

    /// `K = H(PAD(S))`, `M1 = H((H(PAD(N)) xor H(PAD(g))) | H(I) | s | PAD(A) | PAD(B) | K)`,
    /// `M2 = H(PAD(A) | M1 | K)`.
    pub fn session(
        &self,
        premaster: &U2048,
        identity: &[u8],
        salt: &[u8],
        a_pub: &U2048,
        b_pub: &U2048,
    ) -> Session {
        let g = &self.group;
        let key = Zeroizing::new(h::<D>(&[&g.pad(premaster)]));
        let hn = h::<D>(&[&g.pad(&g.n)]);
        let hg = h::<D>(&[&g.pad(&g.g)]);
        let xor: Vec<u8> = hn.iter().zip(&hg).map(|(a, b)| a ^ b).collect();
        let a_pad = g.pad(a_pub);
        let m1 = h::<D>(&[
            &xor,
            &h::<D>(&[identity]),
            salt,
            &a_pad,
            &g.pad(b_pub),
            &key,
        ]);
        let m2 = h::<D>(&[&a_pad, &m1, &key]);
        Session { key, m1, m2 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(hex_str: &str) -> U2048 {
        int(&hex::decode(hex_str).unwrap())
    }

    fn hexu(g: &Group, x: &U2048) -> String {
        hex::encode_upper(g.pad(x))
    }

    /// protocols.md section 3: SHA-256, 2048-bit group.
    #[test]
    fn spec_vector() {
        let srp = Srp::<sha2::Sha256>::new(group_2048());
        let g = &srp.group;
        let s = hex::decode("BEB25379D1A8581EB5A727673A2441EE").unwrap();
        let a = big("60975527035CF2AD1989806F0407210BC81EDC04E2762A56AFD529DDDA2D4393");
        let b = big("E487CB59D31AC550471E81F00F6928E01DDA08E974A004F49E61F5D105284D20");
        assert!(hexu(g, &srp.k())
            .ends_with("05B9E8EF059C6B32EA59FC1D322D37F04AA30BAE5AA9003B8321E21DDB04E300"));
        let x = srp.x(&s, b"e3wfISG9", b"Tb048aX1");
        assert!(hexu(g, &x)
            .ends_with("E91B4DC4B722D8987675E6E61F3F6E160834570E73A12480649E536606374598"));
        let v = srp.verifier(&x);
        let a_pub = srp.client_public(&a);
        let b_pub = srp.server_public(&v, &b);
        let u = srp.u(&a_pub, &b_pub).unwrap();
        assert!(hexu(g, &u)
            .ends_with("C8C8DA42D6F93021CD78D9E8581410E4F1AEC2EEF319900C09BEED861F2DC8F8"));
        let s_server = srp.server_premaster(&a_pub, &v, &u, &b).unwrap();
        let s_client = srp.client_premaster(&b_pub, &x, &a, &u).unwrap();
        assert_eq!(*s_server, *s_client);
        let sess = srp.session(&s_server, b"e3wfISG9", &s, &a_pub, &b_pub);
        assert_eq!(
            hex::encode_upper(&*sess.key),
            "038A8D94327601CED8057562D74B80318D111A0550DC440CE7E366CF5A15E4E2"
        );
        assert_eq!(
            hex::encode_upper(&sess.m1),
            "304B487BB117887BD974B396918148061B5F6CBA1C2160618493A43D37BB1A00"
        );
        assert_eq!(
            hex::encode_upper(&sess.m2),
            "8D8AEC9C6767E73742343A0E52E6B07FFA8B789AB5BB9C7EDB76E95ECBB2E7F8"
        );
    }

    /// RFC 5054 Appendix B: SHA-1, 1024-bit group, I = alice, P = password123.
    #[test]
    fn rfc5054_appendix_b() {
        let srp = Srp::<sha1::Sha1>::new(group_1024());
        let g = &srp.group;
        let s = hex::decode("BEB25379D1A8581EB5A727673A2441EE").unwrap();
        let a = big("60975527035CF2AD1989806F0407210BC81EDC04E2762A56AFD529DDDA2D4393");
        let b = big("E487CB59D31AC550471E81F00F6928E01DDA08E974A004F49E61F5D105284D20");
        assert!(hexu(g, &srp.k()).ends_with("7556AA045AEF2CDD07ABAF0F665C3E818913186F"));
        let x = srp.x(&s, b"alice", b"password123");
        assert!(hexu(g, &x).ends_with("94B7555AABE9127CC58CCF4993DB6CF84D16C124"));
        let v = srp.verifier(&x);
        assert_eq!(hexu(g, &v), concat!(
            "7E273DE8696FFC4F4E337D05B4B375BEB0DDE1569E8FA00A9886D8129BADA1F1822223CA1A605B530E379BA4",
            "729FDC59F105B4787E5186F5C671085A1447B52A48CF1970B4FB6F8400BBF4CEBFBB168152E08AB5EA",
            "53D15C1AFF87B2B9DA6E04E058AD51CC72BFC9033B564E26480D78E955A5E29E7AB245DB2BE315E209",
            "9AFB"
        ));
        let a_pub = srp.client_public(&a);
        assert_eq!(hexu(g, &a_pub), concat!(
            "61D5E490F6F1B79547B0704C436F523DD0E560F0C64115BB72557EC44352E8903211C04692272D8B2D1A5358",
            "A2CF1B6E0BFCF99F921530EC8E39356179EAE45E42BA92AEACED825171E1E8B9AF6D9C03E1327F44BE",
            "087EF06530E69F66615261EEF54073CA11CF5858F0EDFDFE15EFEAB349EF5D76988A3672FAC47B0769",
            "447B"
        ));
        let b_pub = srp.server_public(&v, &b);
        assert_eq!(hexu(g, &b_pub), concat!(
            "BD0C61512C692C0CB6D041FA01BB152D4916A1E77AF46AE105393011BAF38964DC46A0670DD125B95A981652",
            "236F99D9B681CBF87837EC996C6DA04453728610D0C6DDB58B318885D7D82C7F8DEB75CE7BD4FBAA",
            "37089E6F9C6059F388838E7A00030B331EB76840910440B1B27AAEAEEB4012B7D7665238A8E3FB00",
            "4B117B58"
        ));
        let u = srp.u(&a_pub, &b_pub).unwrap();
        assert!(hexu(g, &u).ends_with("CE38B9593487DA98554ED47D70A7AE5F462EF019"));
        let premaster = concat!(
            "B0DC82BABCF30674AE450C0287745E7990A3381F63B387AAF271A10D233861E3",
            "59B48220F7C4693C9AE12B0A6F67809F0876E2D013800D6C41BB59B6D5979B5C",
            "00A172B4A2A5903A0BDCAF8A709585EB2AFAFA8F3499B200210DCC1F10EB3394",
            "3CD67FC88A2F39A4BE5BEC4EC0A3212DC346D7E474B29EDE8A469FFECA686E5A"
        );
        assert_eq!(
            hexu(g, &srp.server_premaster(&a_pub, &v, &u, &b).unwrap()),
            premaster
        );
        assert_eq!(
            hexu(g, &srp.client_premaster(&b_pub, &x, &a, &u).unwrap()),
            premaster
        );
    }

    /// The fixed-base table gives crypto-bigint's g^e for exponents that exercise every digit
    /// value at every position, the edges (0, 1, 2^255, 2^256 - 1), and ignores bits above
    /// the bound exactly as `pow_bounded_exp` does.
    #[test]
    fn fixed_base_table_matches_the_general_exponentiation() {
        for group in [group_2048(), group_1024()] {
            let g = group.g;
            let check = |e: &U2048| {
                assert_eq!(
                    group.powers_of_g.pow(e).retrieve(),
                    group.pow(&g, e),
                    "g^{e}"
                );
            };
            check(&U2048::ZERO);
            check(&U2048::ONE);
            check(&U2048::ONE.shl_vartime(255));
            check(&U2048::MAX.shr_vartime(2048 - 256));
            for d in 0..16u8 {
                // every position holds digit d, then every position a different digit
                check(&int(&[d * 0x11; 32]));
                let mixed: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ d).collect();
                check(&int(&mixed));
            }
            for _ in 0..8 {
                check(&int(&crate::crypto::random_bytes(32)));
            }
            let above = int(&[0xA5; 40]);
            assert_eq!(
                group.powers_of_g.pow(&above).retrieve(),
                group.pow(&g, &above),
                "bits above the bound are ignored alike"
            );
        }
    }

    #[test]
    fn refuses_zero_and_n_as_public_values() {
        let srp = Srp::<sha2::Sha256>::new(group_2048());
        let n = srp.group.n;
        let one = U2048::ONE;
        assert_eq!(
            srp.server_premaster(&U2048::ZERO, &one, &one, &one)
                .unwrap_err(),
            SrpError::ZeroPublic
        );
        assert_eq!(
            srp.server_premaster(&n, &one, &one, &one).unwrap_err(),
            SrpError::ZeroPublic
        );
        let two_n = n.wrapping_add(&n);
        assert!(
            srp.check_public(&two_n).is_err() || two_n < n,
            "2N wraps or is refused"
        );
        assert!(srp.group.parse(&[1u8; 257]).is_err());
        assert_eq!(srp.group.parse(&[0, 0, 7]).unwrap(), U2048::from_u8(7));
    }
}
