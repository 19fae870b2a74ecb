/// A safetensors file that cannot be read or written; the message names the file and, where one is involved, the tensor.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, for callers and tests that branch on the cause rather than parse the message.
    public enum Kind: Sendable, Equatable {
        /// A system call failed (open, stat, mmap, write, fsync, rename).
        case io
        /// The path is a FIFO, device, socket or directory, refused before it is opened.
        case notRegularFile
        /// The file is shorter than the 8-byte header length.
        case truncated
        /// The header length exceeds the reader's cap.
        case headerTooLarge
        /// The header length runs past the end of the file.
        case headerBeyondFile
        /// The header is not UTF-8, not JSON, not an object, or `__metadata__` is not a string map.
        case invalidHeader
        /// A tensor entry lacks `dtype`, `shape` or `data_offsets`, or one of them has the wrong type.
        case invalidEntry
        /// The dtype is not one Graft reads.
        case unknownDType
        /// A negative dimension, or an element count that overflows.
        case invalidShape
        /// The byte range's length is not the element count times the dtype's size.
        case sizeMismatch
        /// The byte range is reversed or ends past the data buffer.
        case offsetsOutOfRange
        /// Two tensors share bytes.
        case overlap
        /// Bytes of the data buffer that belong to no tensor (between tensors or after the last one).
        case gap
        /// No tensor of that name in the file.
        case tensorNotFound
        /// The tensor's values do not fit what was asked for (a float tensor read as integers, a U64 beyond Int64).
        case wrongType
        /// The writer was given a name twice, or a reserved or empty name.
        case invalidName
    }

    public let kind: Kind
    /// The file read or written.
    public let path: String
    /// The tensor concerned, if the problem is with one tensor.
    public let tensor: String?
    public let message: String

    public init(_ kind: Kind, path: String, tensor: String? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        if let tensor { return "\(path): tensor '\(tensor)': \(message)" }
        return "\(path): \(message)"
    }
}
