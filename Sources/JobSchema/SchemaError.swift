/// A manifest or config field that breaks its rule: where (the JSON path is
/// in the message) and what is wrong. The spool turns it into its stable
/// code (SpoolKit: `SpoolError`, MANIFEST_INVALID or UNSUPPORTED): this
/// module knows the fields, not the codes.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The field breaks the manifest's rules (MANIFEST_INVALID).
        case invalid
        /// A valid request mediaspool cannot do (UNSUPPORTED).
        case unsupported
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }

    /// `path` (a JSON path such as `$.output.video.crf`) followed by what is wrong.
    public static func invalid(_ path: String, _ what: String) -> SchemaError { SchemaError(.invalid, "\(path) \(what)") }
    public static func unsupported(_ message: String) -> SchemaError { SchemaError(.unsupported, message) }

    public var description: String { message }
}
