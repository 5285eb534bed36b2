//! Image references and registry addresses, one definition for the coordinator (which lists
//! a registry) and the agent (which pulls from it).

/// `host[:port]/repository[:tag]` split into its parts (tag `latest` when omitted).
pub fn parse_reference(reference: &str) -> Option<(&str, &str, &str)> {
    let (authority, rest) = reference.split_once('/')?;
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (rest, "latest"),
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
    };
    (ok(authority) && ok(repo) && ok(tag) && !repo.contains("..")).then_some((authority, repo, tag))
}

/// The `host:port` a registry base URL (`http://host:port`, trailing `/` allowed) is named by in
/// image references; `None` for anything else (other schemes, paths).
pub fn registry_authority(url: &str) -> Option<&str> {
    let authority = url.strip_prefix("http://")?.trim_end_matches('/');
    (!authority.is_empty() && !authority.contains('/')).then_some(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_registry_repository_and_tag() {
        assert_eq!(
            parse_reference("127.0.0.1:5000/team/app:v1"),
            Some(("127.0.0.1:5000", "team/app", "v1"))
        );
        assert_eq!(
            parse_reference("registry.example.com/app"),
            Some(("registry.example.com", "app", "latest"))
        );
        assert_eq!(parse_reference("app:v1"), None);
        assert_eq!(parse_reference("r.example/../x:1"), None);
        assert_eq!(parse_reference("r.example/a b:1"), None);
    }

    #[test]
    fn registry_urls_name_their_authority() {
        assert_eq!(
            registry_authority("http://127.0.0.1:5000/"),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_authority("https://r.example"), None);
        assert_eq!(registry_authority("http://r.example/v2"), None);
        assert_eq!(registry_authority("http://"), None);
    }
}
