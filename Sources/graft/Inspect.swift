import ArgumentParser
import GraftIO

/// Lists a safetensors file's tensors (name, dtype, shape) in file order, then totals and metadata.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "List the tensors, parameter count and metadata of a safetensors file.")

    @Argument(help: ArgumentHelp("The file to read.", valueName: "FILE.safetensors")) var file: String

    func run() throws {
        let st = try SafeTensorsFile(path: file)
        let nameWidth = max(4, st.infos.map(\.name.count).max() ?? 0)
        let dtypeWidth = max(5, st.infos.map(\.dtype.rawValue.count).max() ?? 0)
        func row(_ name: String, _ dtype: String, _ shape: String) -> String {
            name.padding(nameWidth) + "  " + dtype.padding(dtypeWidth) + "  " + shape
        }
        print(row("name", "dtype", "shape"))
        for info in st.infos {
            print(row(info.name, info.dtype.rawValue, "[\(info.shape.map(String.init).joined(separator: ", "))]"))
        }
        let parameters = st.infos.reduce(0) { $0 + $1.count }
        print("\(st.infos.count) tensors, \(grouped(parameters)) parameters, file size \(grouped(st.fileSize)) bytes")
        if !st.metadata.isEmpty {
            print("metadata:")
            for (key, value) in st.metadata.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value)") }
        }
    }

    /// Thousands separated by commas, so parameter counts of real models read at a glance.
    private func grouped(_ n: Int) -> String {
        let digits = Array(String(n))
        return digits.enumerated().map { i, d in
            i > 0 && (digits.count - i) % 3 == 0 ? ",\(d)" : "\(d)"
        }.joined()
    }
}

private extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
