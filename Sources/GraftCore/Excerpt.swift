/// The longest stretch of a user's value an error message repeats, in Unicode scalars.
public let excerptLimit = 80

/// `text` as an error message shows a value from a file or the command line: whole when short, otherwise its first
/// `limit` Unicode scalars, an ellipsis and its length (`aaaa… (52428800 characters)`), so that a bad 50 MB line
/// gives a one-line message. Cut by scalars rather than characters: one "character" can hold any number of
/// combining marks.
public func excerpt(_ text: some StringProtocol, limit: Int = excerptLimit) -> String {
    let (shown, length) = cut(text, limit)
    return length.map { "\(shown)… (\($0) characters)" } ?? shown
}

/// `excerpt(text)` in single quotes, the length (if cut) after the closing quote: `'aaaa…' (52428800 characters)`.
public func quotedExcerpt(_ text: some StringProtocol, limit: Int = excerptLimit) -> String {
    let (shown, length) = cut(text, limit)
    return length.map { "'\(shown)…' (\($0) characters)" } ?? "'\(shown)'"
}

/// The first `limit` scalars of `text`, and its length in scalars when that is more.
private func cut(_ text: some StringProtocol, _ limit: Int) -> (String, Int?) {
    let scalars = text.unicodeScalars
    guard let end = scalars.index(scalars.startIndex, offsetBy: limit, limitedBy: scalars.endIndex),
          end != scalars.endIndex else { return (String(text), nil) }
    return (String(String.UnicodeScalarView(scalars[..<end])), scalars.count)
}
