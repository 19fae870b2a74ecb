/// Stops the process with `message` when `condition` is false. Unlike `precondition`, the check stays in
/// `-Ounchecked` builds, where Graft's kernels are compiled: a shape error must stop with a message naming the
/// op and the shapes, never run on into garbage inside BLAS.
@inline(__always)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
