import Testing
@testable import BulwarkApp

private let rel = #"rel="nofollow noopener noreferrer""#

/// (input, expected output). Every input is also checked for idempotence below.
private let cases: [(String, String)] = [
    // Ink-style attribute smuggling: no whitespace between attributes.
    (#"<img src="x"onerror="alert(document.domain)" alt="x"/>"#, #"<img src="x" alt="x">"#),
    // javascript: obfuscations lose the href; the link text stays.
    ("<a href=\"java\tscript:alert(1)\">x</a>", "<a>x</a>"),
    ("<a href=\"java\nscript:alert(1)\">x</a>", "<a>x</a>"),
    (#"<a href="jav&#x09;ascript:alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href="jav&#9ascript:alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href="&#106;avascript:alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href="&#x6A;avascript:alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href=" javascript:alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href="JaVaScRiPt:alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href="javascript&colon;alert(1)">x</a>"#, "<a>x</a>"),
    (#"<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>"#, "<a>x</a>"),
    (#"<a href="vbscript:msgbox(1)">x</a>"#, "<a>x</a>"),
    ("<a href=\"\u{0}javascript:alert(1)\">x</a>", "<a>x</a>"),
    ("<a href=\"\u{1}\u{1F} javascript:alert(1)\">x</a>", "<a>x</a>"),
    (#"<a href="&#0;javascript:alert(1)">x</a>"#, "<a>x</a>"),
    // Scripts and styles vanish with their content, which is raw text up to the real end tag.
    ("<p>a<script>alert(1)</script>b</p>", "<p>ab</p>"),
    ("<script>a</b>alert(1)</script>", ""),
    ("<SCRIPT>x</ScRiPt >y", "y"),
    (#"<script>x</script a=">">y"#, "y"),
    ("<script>alert(1)", ""),
    ("<style>body{background:red}</style>ok", "ok"),
    ("<textarea><p>x</p></textarea>t", "t"),
    ("a<plaintext><b>b", "a"),
    // Unknown / disallowed wrappers: tag goes, text stays.
    (#"<font color="red">hi</font> <custom-x>there</custom-x><center>!</center>"#, "hi there!"),
    // Comments, doctype, processing instructions, CDATA.
    ("a<!-- <script>x</script> -->b", "ab"),
    ("a<!-->b<!--->c<!-- x --!>d", "abcd"),
    ("<!DOCTYPE html><?xml version=\"1.0\"?><![CDATA[x]]>t", "t"),
    ("a<!-- never closed <b>x</b>", "a"),
    ("a</ junk>b</>c", "abc"),
    // Quotes in attribute values are escaped; values are always double-quoted.
    (#"<a title='say "hi" & <bye>'>x</a>"#, #"<a title="say &quot;hi&quot; &amp; &lt;bye&gt;">x</a>"#),
    (#"<abbr title="it's">i</abbr>"#, #"<abbr title="it&#39;s">i</abbr>"#),
    // A '<' that does not start a tag is text.
    ("1 < 2 and 3 > 2 <3 a<", "1 &lt; 2 and 3 &gt; 2 &lt;3 a&lt;"),
    // Character references are decoded then re-escaped.
    ("&#60;script&#62; &lt &amp;amp; &unknown; &#x3C;", "&lt;script&gt; &lt; &amp;amp; &amp;unknown; &lt;"),
    ("a&nbsp;b &#128512; &#xD800; &#99999999999;", "a\u{A0}b 😀 \u{FFFD} \u{FFFD}"),
    ("a&#13;b\r\nc", "a&#13;b\nc"),
    ("&#+5; &#x; &#-1; &#", "&amp;#+5; &amp;#x; &amp;#-1; &amp;#"),
    // Well-formedness.
    ("<p><strong>open", "<p><strong>open</strong></p>"),
    ("</div>text</p>", "text"),
    ("<p>a</em>b</p>", "<p>ab</p>"),
    ("<b><i>x</b>y</i>", "<b><i>x</i></b>y"),
    ("<p>hi <b class=\"x", "<p>hi </p>"),
    ("<br/><br></br><hr >", "<br><br><hr>"),
    // Markdown-like output round-trips (links gain rel).
    ("<h2>Title</h2>", "<h2>Title</h2>"),
    ("<p><strong>a</strong> &amp; b</p>", "<p><strong>a</strong> &amp; b</p>"),
    ("<ul><li>one</li><li><em>two</em></li></ul>", "<ul><li>one</li><li><em>two</em></li></ul>"),
    (#"<a href="https://x.test/?a=1&amp;b=2" title="t">l</a>"#,
     #"<a href="https://x.test/?a=1&amp;b=2" title="t" \#(rel)>l</a>"#),
    ("<p><code>&lt;b&gt;</code></p>", "<p><code>&lt;b&gt;</code></p>"),
    ("<pre><code>let x = 1 &lt; 2\n</code></pre>", "<pre><code>let x = 1 &lt; 2\n</code></pre>"),
    ("<blockquote><p>q</p></blockquote><ol start=\"3\"><li>c</li></ol>",
     "<blockquote><p>q</p></blockquote><ol start=\"3\"><li>c</li></ol>"),
    (#"<table><tr><td colspan="2" align="CENTER" rowspan="1234">c</td></tr></table>"#,
     #"<table><tr><td colspan="2" align="center">c</td></tr></table>"#),
    // Safe URLs are kept.
    (#"<a href="mailto:a@b.test">m</a>"#, #"<a href="mailto:a@b.test" \#(rel)>m</a>"#),
    (##"<a href="/x">r</a><a href="#y">f</a>"##, ##"<a href="/x" \##(rel)>r</a><a href="#y" \##(rel)>f</a>"##),
    (#"<a href="//host/x">p</a>"#, #"<a href="//host/x" \#(rel)>p</a>"#),
    (#"<a href="HTTPS://X.TEST">u</a>"#, #"<a href="HTTPS://X.TEST" \#(rel)>u</a>"#),
    // img: a refused src drops the whole element.
    ("<IMG SRC=JaVaScRiPt:alert(1)>", ""),
    ("<img alt=\"no src\">", ""),
    (#"<img src="/a.png" width="100" height="50">"#, #"<img src="/a.png" width="100" height="50">"#),
    (#"<img src="/a.png" width="100 onload=x">"#, #"<img src="/a.png">"#),
    ("<img src=/a.png width=12345 srcset=x.png>", #"<img src="/a.png">"#),
    // Foreign content vanishes, even unclosed.
    ("<svg><script>alert(1)</script></svg>after", "after"),
    ("<svg onload=alert(1)>", ""),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", ""),
    ("<svg><svg></svg>in</svg>out", "out"),
    ("<iframe src=\"https://x\"></iframe><embed src=x>a<meta http-equiv=refresh>b", "ab"),
    // Only allowlisted attributes survive; duplicates keep the first, as browsers do.
    (#"<a href="https://ok.test" onclick="x" style="y" target="_blank">ok</a>"#,
     #"<a href="https://ok.test" \#(rel)>ok</a>"#),
    (#"<a href="/ok" href="javascript:alert(1)">d</a>"#, #"<a href="/ok" \#(rel)>d</a>"#),
    (#"<p id="x" class="y" style="z" onmouseover="w">p</p>"#, "<p>p</p>"),
    (#"<a href="javascript:alert(1)" rel="opener">x</a>"#, "<a>x</a>"),
]

@Test(arguments: cases.indices)
func sanitizes(_ index: Int) {
    let (input, expected) = cases[index]
    #expect(HTMLSanitizer.sanitize(input) == expected, "input: \(input)")
}

@Test(arguments: cases.indices)
func isIdempotent(_ index: Int) {
    let once = HTMLSanitizer.sanitize(cases[index].0)
    #expect(HTMLSanitizer.sanitize(once) == once)
}

@Test func deeplyNestedInputCompletes() {
    let depth = 200_000  // 1 MB of "<div>"
    let input = String(repeating: "<div>", count: depth)
    let output = HTMLSanitizer.sanitize(input)
    #expect(output == input + String(repeating: "</div>", count: depth))
    #expect(HTMLSanitizer.sanitize(output) == output)
}

@Test func strayEndTagsAreCheap() {
    // Each stray end tag must not scan the whole open-element stack.
    let input = String(repeating: "<b>", count: 50_000) + String(repeating: "</i>", count: 50_000)
    #expect(HTMLSanitizer.sanitize(input).count == 50_000 * 7)
}

@Test func safeURLPolicy() {
    for ok in ["https://x.test/a?b#c", "http://x", "mailto:a@b.test", "/path", "#frag", "?q", "//host/x", "rel/a:b", ""] {
        #expect(HTMLSanitizer.safeURL(ok) == ok, "\(ok)")
    }
    #expect(HTMLSanitizer.safeURL("  https://x.test \n") == "https://x.test")
    for bad in ["javascript:alert(1)", "java\tscript:x", " javascript:x", "\u{0}javascript:x", "JaVaScRiPt:x",
                "data:text/html,x", "vbscript:x", "&#106;avascript:x", "jav&#x09;ascript:x", "file:///etc/passwd",
                "\u{212A}ttp:x"] {
        #expect(HTMLSanitizer.safeURL(bad) == nil, "\(bad)")
    }
}

@Test func escaping() {
    #expect(HTMLSanitizer.escapeText("<a & \"b\">") == "&lt;a &amp; \"b\"&gt;")
    #expect(HTMLSanitizer.escapeAttribute("<a & \"b\" 'c'>") == "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;")
}

/// Structural check of sanitiser output: every `<` opens an allowlisted tag whose attributes are
/// allowlisted names with double-quoted values; every `&` starts an escape we produce.
private func isWellFormedOutput(_ html: String) -> Bool {
    let attributeNames: Set<String> = ["href", "title", "src", "alt", "width", "height", "start",
                                       "colspan", "rowspan", "align", "rel"]
    var rest = Substring(html)
    while let lt = rest.firstIndex(where: { $0 == "<" || $0 == "&" }) {
        rest = rest[lt...]
        if rest.first == "&" {
            let escapes = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#13;"]
            guard escapes.contains(where: { rest.hasPrefix($0) }) else { return false }
            rest = rest.dropFirst()
            continue
        }
        guard let gt = rest.firstIndex(of: ">") else { return false }
        var parts = rest[rest.index(after: lt)..<gt].split(separator: " ", maxSplits: 1).map(String.init)
        var name = parts.removeFirst()
        if name.hasPrefix("/") { name.removeFirst(); guard parts.isEmpty else { return false } }
        guard HTMLSanitizer.allowedElements.contains(name) else { return false }
        var attrs = Substring(parts.first ?? "")
        while !attrs.isEmpty {
            guard let eq = attrs.firstIndex(of: "="), attributeNames.contains(String(attrs[..<eq])),
                  attrs[attrs.index(after: eq)...].hasPrefix("\"") else { return false }
            let valueStart = attrs.index(eq, offsetBy: 2)
            guard let close = attrs[valueStart...].firstIndex(of: "\"") else { return false }
            attrs = attrs[attrs.index(after: close)...].drop(while: { $0 == " " })
        }
        rest = rest[rest.index(after: gt)...]
    }
    return true
}

@Test func randomHostileInputsStayWellFormedAndIdempotent() {
    let fragments = ["<", ">", "</", "/", "=", "\"", "'", " ", "\t", "\n", "\0", "&", "&#", "x", "6A;", "&amp;", "&lt;",
                     "<!--", "-->", "<!", "<?", "a", "img", "script", "svg", "p", "b", "href", "src", "onerror",
                     "javascript:", "http://x", "<a href=", "<img src=", "</script>", "<style>", "<textarea>", "`"]
    #expect(isWellFormedOutput(#"<p><a href="/x" rel="r">a &amp; b</a></p>"#))
    for bad in [#"<img onerror="x">"#, "<script>", #"<a href=x>"#, "a & b", #"<a href="x"y">"#] {
        #expect(!isWellFormedOutput(bad), "\(bad)")
    }
    var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<3_000 {
        var input = ""
        for _ in 0..<Int(seed % 40) {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            input += fragments[Int((seed >> 33) % UInt64(fragments.count))]
        }
        let once = HTMLSanitizer.sanitize(input)
        #expect(HTMLSanitizer.sanitize(once) == once, "input: \(input.debugDescription)")
        #expect(isWellFormedOutput(once), "output: \(once.debugDescription)")
        if !isWellFormedOutput(once) || HTMLSanitizer.sanitize(once) != once { break }
    }
}
