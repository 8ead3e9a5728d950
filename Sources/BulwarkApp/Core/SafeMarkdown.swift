import Ink

/// User-written Markdown (lessons now; policies, questionnaires and scenarios later) to HTML that is safe to embed.
/// Ink writes raw HTML and link targets through unchecked, so its output always passes the allowlist sanitiser:
/// whatever the input, only allowed elements, attributes and URL schemes come out, with every value escaped.
enum SafeMarkdown {
    static func html(_ markdown: String) -> String {
        HTMLSanitizer.sanitize(MarkdownParser().html(from: markdown))
    }
}
