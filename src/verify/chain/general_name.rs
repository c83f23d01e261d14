//! General names, CRL distribution points and name-constraint subtrees, extracted once into
//! owned data.

use x509_cert::der::asn1::Any;
use x509_cert::der::{Decode, Encode, Tagged};
use x509_cert::ext::pkix::constraints::name::GeneralSubtrees;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::NameConstraints as X509NameConstraints;
use x509_cert::name::Name as X509Name;

use super::name::{wrap_sequence, Name};

/// An owned GeneralName, keeping OpenSSL's `GEN_*` type number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GeneralNameOwned {
    /// rfc822Name (`GEN_EMAIL`, 1), raw IA5 bytes.
    Email(Vec<u8>),
    /// dNSName (`GEN_DNS`, 2), raw IA5 bytes.
    Dns(Vec<u8>),
    /// directoryName (`GEN_DIRNAME`, 4).
    Directory(Name),
    /// uniformResourceIdentifier (`GEN_URI`, 6), raw IA5 bytes.
    Uri(Vec<u8>),
    /// iPAddress (`GEN_IPADD`, 7): 4 or 16 bytes, or 8/32 (address and mask) in constraints.
    Ip(Vec<u8>),
    /// otherName (`GEN_OTHERNAME`, 0): type-id OID and raw value.
    OtherName {
        /// The type-id OID (DER contents).
        oid: Vec<u8>,
        /// The explicitly tagged value, raw.
        value: Vec<u8>,
    },
    /// Any other type (x400Address 3, ediPartyName 5, registeredID 8) with its contents,
    /// compared only by type and bytes.
    Other(u8, Vec<u8>),
}

impl GeneralNameOwned {
    /// Converts x509-cert's form; `None` when a directoryName cannot be canonicalised.
    pub(crate) fn from_x509(name: &GeneralName) -> Option<Self> {
        Self::from_any(&Any::from_der(&name.to_der().ok()?).ok()?)
    }

    /// Converts one GeneralName read as a raw context-specific value, without checking the
    /// string types' alphabets (OpenSSL keeps an rfc822Name, dNSName or URI whatever its bytes);
    /// `None` for an unknown tag or a directoryName or otherName that does not decode.
    pub(crate) fn from_any(name: &Any) -> Option<Self> {
        let tag = name.tag();
        if !tag.is_context_specific() {
            return None;
        }
        let bytes = name.value();
        let number = tag.number().value();
        Some(match (number, tag.is_constructed()) {
            (1, false) => Self::Email(bytes.to_vec()),
            (2, false) => Self::Dns(bytes.to_vec()),
            (6, false) => Self::Uri(bytes.to_vec()),
            (7, false) => Self::Ip(bytes.to_vec()),
            (4, true) => Self::Directory(Name::from_x509(&X509Name::from_der(bytes).ok()?)?),
            (0, true) => {
                let other = OtherName::from_der(&wrap_sequence(bytes)).ok()?;
                Self::OtherName {
                    oid: other.type_id.as_bytes().to_vec(),
                    value: other.value.to_der().ok()?,
                }
            }
            (3 | 5, true) | (8, false) => Self::Other(number, bytes.to_vec()),
            _ => return None,
        })
    }

    /// OpenSSL's `GEN_*` number for this name.
    pub(super) fn type_id(&self) -> u8 {
        match self {
            Self::Email(_) => 1,
            Self::Dns(_) => 2,
            Self::Directory(_) => 4,
            Self::Uri(_) => 6,
            Self::Ip(_) => 7,
            Self::OtherName { .. } => 0,
            Self::Other(t, _) => *t,
        }
    }

    /// Whether a constraint `base` applies to this name (`nc_match`): same type, and for
    /// otherNames the same type-id.
    pub(super) fn constrained_by(&self, base: &Self) -> bool {
        match (self, base) {
            (Self::OtherName { oid: a, .. }, Self::OtherName { oid: b, .. }) => a == b,
            _ => self.type_id() == base.type_id(),
        }
    }
}

/// Converts a list of GeneralNames; `None` if any directoryName cannot be canonicalised.
pub(super) fn general_names(names: &[GeneralName]) -> Option<Vec<GeneralNameOwned>> {
    names.iter().map(GeneralNameOwned::from_x509).collect()
}

/// Converts a GeneralNames SEQUENCE (DER) read leniently, entry by entry
/// ([`GeneralNameOwned::from_any`]); `None` if it is not a SEQUENCE of GeneralNames.
pub(crate) fn general_names_from_der(der: &[u8]) -> Option<Vec<GeneralNameOwned>> {
    let entries = Vec::<Any>::from_der(der).ok()?;
    entries.iter().map(GeneralNameOwned::from_any).collect()
}

/// The first directoryName of a list, as OpenSSL takes it for AKID issuers and CRL issuers.
pub(crate) fn first_directory_name(names: &[GeneralNameOwned]) -> Option<&Name> {
    names.iter().find_map(|n| match n {
        GeneralNameOwned::Directory(name) => Some(name),
        _ => None,
    })
}

/// A distribution point name with a relative name already made absolute (`DIST_POINT_set_dpname`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DistPointName {
    /// `fullName`.
    Full(Vec<GeneralNameOwned>),
    /// `nameRelativeToCRLIssuer`, appended to the CRL issuer's name.
    Relative(Name),
}

impl DistPointName {
    /// Converts x509-cert's form; relative names are resolved against `base`.
    pub(crate) fn from_x509(name: &DistributionPointName, base: &Name) -> Option<Self> {
        Some(match name {
            DistributionPointName::FullName(names) => Self::Full(general_names(names)?),
            DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
                Self::Relative(base.with_rdn(rdn)?)
            }
        })
    }
}

/// All CRL reasons (`CRLDP_ALL_REASONS`), bit n = reason n (the ReasonFlags BIT STRING's bit n).
pub(crate) const ALL_REASONS: u16 = 0x01fe;

/// One entry of a certificate's CRL distribution points extension.
#[derive(Clone, Debug)]
pub(crate) struct DistPoint {
    /// The distribution point name.
    pub(crate) name: Option<DistPointName>,
    /// The `cRLIssuer` names, if present.
    pub(crate) crl_issuer: Option<Vec<GeneralNameOwned>>,
    /// The covered reasons (all when absent).
    pub(crate) reasons: u16,
}

// ---------------------------------------------------------------------------------------------
// Name constraints
// ---------------------------------------------------------------------------------------------

/// A NameConstraints extension (subtree minimum/maximum are not represented).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameConstraints {
    /// Permitted subtrees.
    pub(super) permitted: Vec<GeneralNameOwned>,
    /// Excluded subtrees.
    pub(super) excluded: Vec<GeneralNameOwned>,
}

impl NameConstraints {
    /// Converts x509-cert's form.
    pub(super) fn from_x509(nc: &X509NameConstraints) -> Option<Self> {
        let convert = |subtrees: &Option<GeneralSubtrees>| {
            subtrees
                .iter()
                .flatten()
                .map(|s| GeneralNameOwned::from_x509(&s.base))
                .collect::<Option<Vec<_>>>()
        };
        Some(Self {
            permitted: convert(&nc.permitted_subtrees)?,
            excluded: convert(&nc.excluded_subtrees)?,
        })
    }

    /// Parses the contents of a NameConstraints SEQUENCE (a `TrustAnchor`'s constraints).
    pub(super) fn from_contents(contents: &[u8]) -> Option<Self> {
        let der = wrap_sequence(contents);
        Self::from_x509(&X509NameConstraints::from_der(&der).ok()?)
    }

    /// Number of subtrees.
    pub(super) fn len(&self) -> usize {
        self.permitted.len() + self.excluded.len()
    }
}
