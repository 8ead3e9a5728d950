/// Escaping for text Bulwark writes into its own HTML (error pages, the API reference, the teachable moment).
enum HTML {
    /// Safe inside element content and quoted attribute values alike.
    static func escape(_ text: String) -> String { HTMLSanitizer.escapeAttribute(text) }
}
