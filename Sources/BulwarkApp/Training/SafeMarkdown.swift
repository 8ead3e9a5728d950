import Ink

/// Lesson Markdown to HTML that cannot carry script: raw HTML in the source is escaped before Ink sees it, and
/// links or images with a scripting scheme are neutralised afterwards.
enum SafeMarkdown {
    static func html(_ markdown: String) -> String {
        let escaped = markdown
            .replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
        var html = MarkdownParser().html(from: escaped)
        for scheme in ["javascript:", "vbscript:", "data:"] {
            html = html.replacingOccurrences(of: "href=\"\(scheme)", with: "href=\"#blocked-", options: .caseInsensitive)
            html = html.replacingOccurrences(of: "src=\"\(scheme)", with: "src=\"#blocked-", options: .caseInsensitive)
        }
        return html
    }
}
