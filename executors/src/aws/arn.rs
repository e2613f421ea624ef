//! Reading the parts of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`).

/// The parts of an ARN Steppy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

/// Splits `text` into its ARN parts, or `None` if it is not an ARN.
pub fn parse(text: &str) -> Option<Arn<'_>> {
    let mut parts = text.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    Some(Arn {
        partition: parts.next()?,
        service: parts.next()?,
        region: parts.next()?,
        account: parts.next()?,
        resource: parts.next()?,
    })
}

/// The region of an ARN, if it has one (IAM ARNs do not).
pub fn region(text: &str) -> Option<&str> {
    parse(text).map(|a| a.region).filter(|r| !r.is_empty())
}

/// The account of an ARN, if it has one.
pub fn account(text: &str) -> Option<&str> {
    parse(text).map(|a| a.account).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topic_and_role_arns() {
        assert_eq!(region("arn:aws:sns:eu-west-1:123456789012:releases"), Some("eu-west-1"));
        assert_eq!(account("arn:aws:iam::210987654321:role/deployer"), Some("210987654321"));
        assert_eq!(region("arn:aws:iam::210987654321:role/deployer"), None);
        assert_eq!(parse("not-an-arn"), None);
        assert_eq!(
            parse("arn:aws:sns:r:a:topic:with:colons").map(|a| a.resource),
            Some("topic:with:colons")
        );
    }
}
