/// Allowlist HTML sanitiser: the one place where user-written HTML (or HTML rendered from
/// user-written Markdown) becomes safe to embed in a page.
///
/// Safety does not depend on tokenising exactly like a browser: the output is rebuilt from
/// tokens, so it only ever contains allowlisted tag and attribute names, double-quoted attribute
/// values and text that we escaped ourselves. The tokenizer follows HTML5 closely (and errs on the
/// side of dropping content) only so that what we keep matches what the author's browser showed.
enum HTMLSanitizer {
    static let allowedElements: Set<String> = [
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "b", "em", "i", "u", "s",
        "del", "ins", "sub", "sup", "mark", "small", "code", "pre", "kbd", "blockquote",
        "ul", "ol", "li", "dl", "dt", "dd", "a", "img", "table", "thead", "tbody", "tfoot",
        "tr", "th", "td", "caption", "span", "div", "abbr", "figure", "figcaption",
    ]

    /// Their content is script, styling, embedded documents or foreign markup: even as plain text it
    /// would be garbage to the reader, so it goes together with the element.
    static let droppedWithContent: Set<String> = [
        "script", "style", "iframe", "object", "embed", "template", "textarea", "title", "noscript",
        "xmp", "plaintext", "noembed", "noframes", "select", "option", "svg", "math", "frame",
        "frameset", "applet", "base", "link", "meta", "form",
    ]

    /// Browsers read the content of these as raw text up to the matching end tag, so `<b>` inside
    /// `<script>` is not a tag and must not end our skipping early (or late).
    static let rawTextElements: Set<String> = [
        "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
    ]

    /// Void elements never get an end tag: dropping one must not wait for a `</x>` that never comes,
    /// and keeping one must not push it onto the open-element stack.
    static let voidElements: Set<String> = [
        "area", "base", "br", "col", "embed", "frame", "hr", "img", "input", "keygen", "link",
        "meta", "param", "source", "track", "wbr",
    ]

    static let attributePolicy: [String: Set<String>] = [
        "a": ["href", "title"], "img": ["src", "alt", "title", "width", "height"], "ol": ["start"],
        "th": ["colspan", "rowspan", "align"], "td": ["colspan", "rowspan", "align"], "abbr": ["title"],
    ]

    static let allowedSchemes: Set<String> = ["http", "https", "mailto"]
    static let linkRel = "nofollow noopener noreferrer"

    /// Small on purpose: an unknown reference stays literal text (`&amp;foo;`), which is safe.
    /// `colon`, `Tab` and `NewLine` are here because they are classic URL-obfuscation tricks.
    static let namedReferences: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}",
        "AMP": "&", "LT": "<", "GT": ">", "QUOT": "\"", "copy": "©", "reg": "®", "trade": "™",
        "hellip": "…", "mdash": "—", "ndash": "–", "lsquo": "‘", "rsquo": "’", "ldquo": "“",
        "rdquo": "”", "laquo": "«", "raquo": "»", "times": "×", "middot": "·", "bull": "•",
        "euro": "€", "colon": ":", "Tab": "\t", "NewLine": "\n",
    ]

    /// HTML5 still decodes these legacy names without a trailing `;`.
    static let legacyReferences = ["amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "AMP", "LT", "GT",
                                   "QUOT"]

    static func sanitize(_ html: String) -> String {
        var parser = Parser(html)
        return parser.run()
    }

    /// The URL if it is safe for href/src (http, https, mailto, or relative), else nil.
    /// `raw` is the attribute value after character-reference decoding.
    static func safeURL(_ raw: String) -> String? {
        // Also vet one more round of decoding, so a caller that forgot to decode (or a value that
        // gets decoded again somewhere downstream) cannot smuggle `&#106;avascript:` through.
        let decodedAgain = decodeReferences(Array(raw.unicodeScalars)[...], inAttribute: true)
        guard let url = schemeChecked(raw), schemeChecked(decodedAgain) != nil else { return nil }
        return url
    }

    static func escapeText(_ s: String) -> String { escape(s, quotes: false) }
    static func escapeAttribute(_ s: String) -> String { escape(s, quotes: true) }

    private static func schemeChecked(_ raw: String) -> String? {
        // Mirror the WHATWG URL parser, which is what decides the scheme in the browser: it removes
        // tab/LF/CR anywhere and trims C0 controls and spaces at both ends.
        let cleaned: [Unicode.Scalar] = raw.unicodeScalars.filter { $0 != "\t" && $0 != "\n" && $0 != "\r" }
        var lo = 0, hi = cleaned.count
        while lo < hi, cleaned[lo].value <= 0x20 { lo += 1 }
        while hi > lo, cleaned[hi - 1].value <= 0x20 { hi -= 1 }
        let url = cleaned[lo..<hi]
        // Stricter than WHATWG on purpose: any ':' before the first '/', '?' or '#' counts as a
        // scheme separator, so odd prefixes like "\u{FFFD}javascript:" are refused, not "relative".
        if let colon = url.firstIndex(where: { ":/?#".unicodeScalars.contains($0) }), url[colon] == ":" {
            let scheme = string(url[lo..<colon].map(lowercased))
            guard allowedSchemes.contains(scheme) else { return nil }
        }
        return string(url)
    }

    private static func escape(_ s: String, quotes: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where quotes: out += "&quot;"
            case "'" where quotes: out += "&#39;"
            // A raw CR (from `&#13;`) would turn into LF on the next parse: encode it to stay idempotent.
            case "\r": out += "&#13;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func decodeReferences(_ s: ArraySlice<Unicode.Scalar>, inAttribute: Bool) -> String {
        var out = String.UnicodeScalarView()
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let (value, next) = characterReference(s, at: i + 1, inAttribute: inAttribute) {
                out.append(contentsOf: value.unicodeScalars)
                i = next
                continue
            }
            out.append(s[i])
            i += 1
        }
        return String(out)
    }

    /// Decodes the reference starting just after `&`; returns its value and the index after it.
    private static func characterReference(_ s: ArraySlice<Unicode.Scalar>, at start: Int,
                                           inAttribute: Bool) -> (String, Int)? {
        var i = start
        guard i < s.endIndex else { return nil }
        if s[i] == "#" {
            i += 1
            let hex = i < s.endIndex && (s[i] == "x" || s[i] == "X")
            if hex { i += 1 }
            let radix: UInt32 = hex ? 16 : 10
            let firstDigit = i
            var value: UInt32 = 0
            while i < s.endIndex, s[i].isASCII, let d = UInt32(String(s[i]), radix: Int(radix)) {
                value = min(value * radix + d, 0x110000)  // saturate: anything that large is invalid anyway
                i += 1
            }
            guard i > firstDigit else { return nil }
            if i < s.endIndex, s[i] == ";" { i += 1 }
            // NUL, surrogates and out-of-range code points become U+FFFD, as in browsers.
            let scalar = value == 0 ? nil : Unicode.Scalar(value)
            return (String(Character(scalar ?? "\u{FFFD}")), i)
        }
        while i < s.endIndex, i - start < 32, isASCIIAlphanumeric(s[i]) { i += 1 }
        let name = string(s[start..<i])
        if i < s.endIndex, s[i] == ";", let value = namedReferences[name] { return (value, i + 1) }
        for legacy in legacyReferences where name.hasPrefix(legacy) {
            let end = start + legacy.unicodeScalars.count
            // HTML5 leaves "&ampx" / "&amp=" alone inside attributes so query strings survive.
            if inAttribute, end < s.endIndex, isASCIIAlphanumeric(s[end]) || s[end] == "=" { continue }
            if let value = namedReferences[legacy] { return (value, end) }
        }
        return nil
    }

    /// Keeps only policy-approved attributes, each already validated; nil entries are dropped.
    static func filterAttributes(_ element: String, _ attributes: [(name: String, value: String)])
        -> [(name: String, value: String)] {
        guard let allowed = attributePolicy[element] else { return [] }
        return attributes.compactMap { attribute in
            guard allowed.contains(attribute.name) else { return nil }
            let value: String?
            switch attribute.name {
            case "href", "src": value = safeURL(attribute.value)
            case "width", "height": value = digits(attribute.value, maxLength: 4)
            case "start": value = digits(attribute.value, maxLength: 9)
            case "colspan", "rowspan": value = digits(attribute.value, maxLength: 3)
            case "align":
                let v = string(attribute.value.unicodeScalars.map(lowercased))
                value = ["left", "center", "right"].contains(v) ? v : nil
            default: value = attribute.value  // free text (title, alt): escaping makes it safe
            }
            return value.map { (attribute.name, $0) }
        }
    }

    private static func digits(_ s: String, maxLength: Int) -> String? {
        let scalars = s.unicodeScalars
        let ok = (1...maxLength).contains(scalars.count) && scalars.allSatisfy { ("0"..."9").contains($0) }
        return ok ? s : nil
    }

    static func lowercased(_ c: Unicode.Scalar) -> Unicode.Scalar {
        // ASCII only: Unicode case mapping could turn e.g. the Kelvin sign into "k".
        ("A"..."Z").contains(c) ? Unicode.Scalar(UInt8(c.value + 32)) : c
    }

    static func isASCIIAlpha(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(lowercased(c)) }
    static func isASCIIAlphanumeric(_ c: Unicode.Scalar) -> Bool { isASCIIAlpha(c) || ("0"..."9").contains(c) }
    static func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\u{C}" }

    static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
        String(String.UnicodeScalarView(scalars))
    }
}

/// One pass over the input; emits output as it goes and keeps all nesting on explicit stacks so
/// deeply nested input cannot exhaust the call stack.
private struct Parser {
    typealias H = HTMLSanitizer
    typealias Attribute = (name: String, value: String)

    let s: [Unicode.Scalar]
    var i = 0
    var out = ""
    var open: [String] = []
    /// Lets a stray end tag be rejected in O(1) instead of scanning the whole stack each time.
    var openCount: [String: Int] = [:]
    /// Inside a dropped element we only count nesting of the same name to find where it ends.
    var dropping: (name: String, depth: Int)?

    init(_ html: String) {
        // HTML5 input-stream preprocessing: CRLF and CR become LF; NUL becomes U+FFFD.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(html.utf8.count)
        var afterCR = false
        for c in html.unicodeScalars {
            if c == "\n", afterCR { afterCR = false; continue }
            afterCR = c == "\r"
            scalars.append(c == "\r" ? "\n" : c == "\0" ? "\u{FFFD}" : c)
        }
        s = scalars
    }

    mutating func run() -> String {
        while i < s.count {
            let start = i
            if s[i] == "<" {
                if markup() { continue }
                i += 1  // a `<` that starts no markup is text
            }
            _ = scan { $0 != "<" }
            if dropping == nil { out += H.escapeText(H.decodeReferences(s[start..<i], inAttribute: false)) }
        }
        while let name = open.popLast() { out += "</\(name)>" }
        return out
    }

    func peek(_ offset: Int) -> Unicode.Scalar? { i + offset < s.count ? s[i + offset] : nil }

    /// Advances past the scalars matching `predicate` and returns them.
    mutating func scan(while predicate: (Unicode.Scalar) -> Bool) -> ArraySlice<Unicode.Scalar> {
        let start = i
        while i < s.count, predicate(s[i]) { i += 1 }
        return s[start..<i]
    }

    mutating func skipPast(_ end: Unicode.Scalar) {
        _ = scan { $0 != end }
        i = min(i + 1, s.count)
    }

    /// Handles the markup at a `<`; false if the `<` is just text.
    mutating func markup() -> Bool {
        switch (peek(1), peek(2)) {
        case ("!", _):
            if peek(2) == "-", peek(3) == "-" { skipComment() } else { skipPast(">") }  // doctype, CDATA
        case ("?", _):
            skipPast(">")
        case ("/", ">"?):
            i += 3
        case ("/", let c?) where H.isASCIIAlpha(c):
            i += 2
            if let (name, _) = tag() { endTag(name) }
        case ("/", _?):
            skipPast(">")  // bogus comment
        case (let c?, _) where H.isASCIIAlpha(c):
            i += 1
            if let (name, attributes) = tag() { startTag(name, attributes) }
        default:
            return false
        }
        return true
    }

    mutating func skipComment() {
        // Searching from just after `<!` makes `<!-->` and `<!--->` complete comments, as in HTML5.
        i += 2
        while i < s.count {
            if s[i] == "-", peek(1) == "-" {
                if peek(2) == ">" { i += 3; return }
                if peek(2) == "!", peek(3) == ">" { i += 4; return }
            }
            i += 1
        }
    }

    /// Tag name and attributes, after `<` or `</`. If the input ends inside the tag, browsers drop
    /// the tag, so we stop there too and return nil.
    mutating func tag() -> (String, [Attribute])? {
        let name = H.string(scan { !H.isSpace($0) && $0 != "/" && $0 != ">" }.map(H.lowercased))
        guard let attributes = attributes() else { i = s.count; return nil }
        return (name, attributes)
    }

    mutating func attributes() -> [Attribute]? {
        var result: [Attribute] = []
        var seen: Set<String> = []
        while true {
            _ = scan { H.isSpace($0) || $0 == "/" }
            guard i < s.count else { return nil }
            if s[i] == ">" { i += 1; return result }
            // The first character belongs to the name even if it is "=", as in HTML5.
            i += 1
            let rawName = s[(i - 1)...(i - 1)] + scan { !H.isSpace($0) && $0 != "/" && $0 != ">" && $0 != "=" }
            let name = H.string(rawName.map(H.lowercased))
            _ = scan(while: H.isSpace)
            var value = ""
            if peek(0) == "=" {
                i += 1
                _ = scan(while: H.isSpace)
                guard let quote = peek(0) else { return nil }
                if quote == "\"" || quote == "'" {
                    i += 1
                    let raw = scan { $0 != quote }
                    guard i < s.count else { return nil }
                    i += 1  // no whitespace needed before the next one: `src="x"onerror=…` is two attributes
                    value = H.decodeReferences(raw, inAttribute: true)
                } else {
                    value = H.decodeReferences(scan { !H.isSpace($0) && $0 != ">" }, inAttribute: true)
                }
            }
            // Browsers keep the first of duplicate attributes; so do we, or we would vet one and emit another.
            if seen.insert(name).inserted { result.append((name, value)) }
        }
    }

    mutating func startTag(_ name: String, _ attributes: [Attribute]) {
        if name == "plaintext" { i = s.count; return }  // a browser shows everything after it as text
        if H.rawTextElements.contains(name) { skipRawText(name); return }
        if var d = dropping {
            if d.name == name { d.depth += 1; dropping = d }
            return
        }
        if H.droppedWithContent.contains(name) {
            if !H.voidElements.contains(name) { dropping = (name, 1) }
            return
        }
        guard H.allowedElements.contains(name) else { return }  // unknown wrapper: keep its children
        let kept = H.filterAttributes(name, attributes)
        if name == "img", !kept.contains(where: { $0.name == "src" }) { return }  // nothing to show
        out += "<" + name
        for attribute in kept { out += " \(attribute.name)=\"\(H.escapeAttribute(attribute.value))\"" }
        if name == "a", kept.contains(where: { $0.name == "href" }) { out += " rel=\"\(H.linkRel)\"" }
        out += ">"
        guard !H.voidElements.contains(name) else { return }
        open.append(name)
        openCount[name, default: 0] += 1
    }

    mutating func endTag(_ name: String) {
        if var d = dropping {
            if d.name == name { d.depth -= 1; dropping = d.depth == 0 ? nil : d }
            return
        }
        guard openCount[name, default: 0] > 0 else { return }
        // Close everything opened inside it too, so the output stays properly nested.
        while let top = open.popLast() {
            openCount[top, default: 1] -= 1
            out += "</\(top)>"
            if top == name { break }
        }
    }

    /// Skips to just past `</name…>` (case-insensitive), or to the end of input if it never comes.
    mutating func skipRawText(_ name: String) {
        let target = Array(name.unicodeScalars)
        while i < s.count {
            if s[i] == "<", peek(1) == "/", i + 2 + target.count < s.count,
               zip(s[(i + 2)...], target).allSatisfy({ H.lowercased($0) == $1 }) {
                let after = s[i + 2 + target.count]
                if H.isSpace(after) || after == "/" || after == ">" {
                    i += 2 + target.count
                    if attributes() == nil { i = s.count }
                    return
                }
            }
            i += 1
        }
    }
}
