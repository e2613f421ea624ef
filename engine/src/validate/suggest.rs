//! "Did you mean …?": the closest known word to a misspelled one.

/// The candidate closest to `word`, if it is close enough to be what was meant: the same word in
/// another case, or one within a small edit distance relative to its length.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for candidate in candidates {
        if candidate.to_lowercase() == lower {
            return Some(candidate);
        }
        let score = strsim::normalized_damerau_levenshtein(&lower, &candidate.to_lowercase())
            .max(strsim::jaro_winkler(&lower, &candidate.to_lowercase()) - 0.15);
        if score >= 0.7 && best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;
    use crate::plan::StepType;

    #[test]
    fn misspellings_find_their_word() {
        assert_eq!(closest("CodeBuld", StepType::names()), Some("CodeBuild"));
        assert_eq!(closest("codebuild", StepType::names()), Some("CodeBuild"));
        assert_eq!(
            closest("CodePipelineNoWiat", StepType::names()),
            Some("CodePipelineNoWait")
        );
        assert_eq!(closest("Notfy", StepType::names()), Some("Notify"));
        assert_eq!(
            closest("codebuildName", ["codeBuildName", "sourceVersion"]),
            Some("codeBuildName")
        );
    }

    #[test]
    fn unrelated_words_find_nothing() {
        assert_eq!(closest("Lambda", StepType::names()), None);
        assert_eq!(closest("zzz", ["codeBuildName", "name"]), None);
    }
}
