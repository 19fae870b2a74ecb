import Foundation
import GraftCore
import GraftNN

extension Module {
    /// Freezes (or, with `frozen: false`, unfreezes) every parameter whose dotted name matches the glob `pattern`
    /// (`*` any run of characters, `?` one): a frozen parameter gets no gradient computed at all. Returns the names
    /// changed; a pattern that matches nothing is an error naming it.
    @discardableResult
    public func setFrozen(_ frozen: Bool, matching pattern: String) throws -> [String] {
        let all = namedParameters()
        let chosen = Set(names(all.map(\.0), matching: globRegex(pattern)) ?? [])
        let hits = all.filter { chosen.contains($0.0) }
        guard !hits.isEmpty else { throw GroupingError.matchesNothing(group: frozen ? "freeze" : "unfreeze", selector: "glob '\(pattern)'") }
        for (_, p) in hits { p.requiresGrad = !frozen }
        return hits.map(\.0)
    }

    /// Puts every batch-norm layer whose parameters are all frozen into inference mode (running statistics fixed),
    /// as fine-tuning with a frozen body expects; call after `train()`. With `keepTraining`, frozen batch-norm
    /// layers keep updating their statistics instead.
    public func fixFrozenBatchNorm(keepTraining: Bool = false) {
        guard !keepTraining else { return }
        for (_, m) in namedModules() {
            guard let bn = m as? BatchNorm, !bn.parameters.isEmpty, bn.parameters.allSatisfy({ !$0.1.requiresGrad }) else { continue }
            bn.isTraining = false
        }
    }
}
