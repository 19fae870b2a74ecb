import ArgumentParser

/// Graft's command line: a thin layer over the library's configuration types.
struct Graft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Transfer learning in Swift, data-parallel over MPI.",
        subcommands: [MLPDemo.self, Bench.self])
}

Graft.main()
