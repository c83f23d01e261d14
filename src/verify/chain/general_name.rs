//! General names, CRL distribution points and name-constraint subtrees, extracted once into
//! owned data.

use x509_parser::extensions::{
    DistributionPointName, GeneralName, NameConstraints as X509NameConstraints,
};
use x509_parser::prelude::FromDer;

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
    /// Converts x509-parser's form; `None` when a directoryName cannot be canonicalised.
    pub(crate) fn from_x509(name: &GeneralName<'_>) -> Option<Self> {
        Some(match name {
            GeneralName::RFC822Name(s) => Self::Email(s.as_bytes().to_vec()),
            GeneralName::DNSName(s) => Self::Dns(s.as_bytes().to_vec()),
            GeneralName::URI(s) => Self::Uri(s.as_bytes().to_vec()),
            GeneralName::IPAddress(b) => Self::Ip(b.to_vec()),
            GeneralName::DirectoryName(n) => Self::Directory(Name::from_x509(n)?),
            GeneralName::OtherName(o, data) => Self::OtherName {
                oid: o.as_bytes().to_vec(),
                value: data.to_vec(),
            },
            GeneralName::X400Address(any) => Self::Other(3, any.data.to_vec()),
            GeneralName::EDIPartyName(any) => Self::Other(5, any.data.to_vec()),
            GeneralName::RegisteredID(o) => Self::Other(8, o.as_bytes().to_vec()),
            GeneralName::Invalid(tag, data) => match tag.0 {
                1 => Self::Email(data.to_vec()),
                2 => Self::Dns(data.to_vec()),
                6 => Self::Uri(data.to_vec()),
                7 => Self::Ip(data.to_vec()),
                n => Self::Other(u8::try_from(n).unwrap_or(u8::MAX), data.to_vec()),
            },
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
pub(super) fn general_names(names: &[GeneralName<'_>]) -> Option<Vec<GeneralNameOwned>> {
    names.iter().map(GeneralNameOwned::from_x509).collect()
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
    /// Converts x509-parser's form; relative names are resolved against `base`.
    pub(crate) fn from_x509(name: &DistributionPointName<'_>, base: &Name) -> Option<Self> {
        Some(match name {
            DistributionPointName::FullName(names) => Self::Full(general_names(names)?),
            DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
                Self::Relative(base.with_rdn(rdn)?)
            }
        })
    }
}

/// All CRL reasons (`CRLDP_ALL_REASONS`), in x509-parser's bit order (bit n = reason n).
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

/// A NameConstraints extension (minimum/maximum are not represented: x509-parser drops them).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameConstraints {
    /// Permitted subtrees.
    pub(super) permitted: Vec<GeneralNameOwned>,
    /// Excluded subtrees.
    pub(super) excluded: Vec<GeneralNameOwned>,
}

impl NameConstraints {
    /// Converts x509-parser's form.
    pub(super) fn from_x509(nc: &X509NameConstraints<'_>) -> Option<Self> {
        let convert = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
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
        match X509NameConstraints::from_der(&der) {
            Ok(([], nc)) => Self::from_x509(&nc),
            _ => None,
        }
    }

    /// Number of subtrees.
    pub(super) fn len(&self) -> usize {
        self.permitted.len() + self.excluded.len()
    }
}
