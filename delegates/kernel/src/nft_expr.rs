//! Builders of the nftables expressions and statements our rule sets share, over the
//! `nftables` crate's JSON schema (which spells each one out in several nested types).

use std::borrow::Cow;

use ipnet::IpNet;
use nftables::expr::{Expression, NamedExpression, Payload, PayloadField, Prefix};
use nftables::stmt::{Match, Operator, Statement};

/// `left <op> right`.
pub fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

/// A header field, e.g. `ip daddr`.
pub fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

/// A prefix, e.g. `10.0.0.0/16`.
pub fn prefix(net: IpNet) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(string(&net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

/// A string (an address, an interface name or pattern, a keyword such as `local`).
pub fn string(s: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(s.to_owned()))
}
