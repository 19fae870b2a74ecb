import Foundation
import GraftCore

/// One sinusoid regression task, y = A·sin(x − φ), with its sampled support and query points.
public struct Sinusoid {
    public let amplitude: Float
    public let phase: Float
    /// Support inputs and targets [K, 1], query inputs and targets [Q, 1].
    public let task: MetaTask

    /// A·sin(x − φ), computed in Double.
    public func callAsFunction(_ x: Float) -> Float {
        Float(Double(amplitude) * sin(Double(x) - Double(phase)))
    }

    /// The task's function at each of `xs`, as a column [count, 1].
    public func values(at xs: [Float]) -> Tensor { Tensor(xs.map { self($0) }, shape: [xs.count, 1]) }
}

/// The sinusoid regression tasks of the MAML paper (Finn et al., 2017, section 5.1): amplitude uniform in
/// [0.1, 5.0], phase uniform in [0, π], inputs uniform in [−5, 5], targets y = A·sin(x − φ), with `shots` support
/// points and `queries` query points per task.
///
/// Task `index` of meta-step `metaStep` is a function of (seed, metaStep, index) only: from its own generator the
/// amplitude is drawn first, then the phase, then the K support inputs, then the Q query inputs.
public struct SinusoidTasks: Sendable {
    public static let amplitudes: ClosedRange<Float> = 0.1...5.0
    public static let phases: ClosedRange<Float> = 0...Float.pi
    public static let inputs: ClosedRange<Float> = -5...5

    public let shots: Int
    public let queries: Int
    public let seed: UInt64

    public init(shots: Int, queries: Int, seed: UInt64) {
        require(shots >= 1 && queries >= 1, "SinusoidTasks: shots \(shots) and queries \(queries) must be ≥ 1")
        (self.shots, self.queries, self.seed) = (shots, queries, seed)
    }

    /// Task `index` of meta-step `metaStep`.
    public func task(metaStep: Int, index: Int) -> Sinusoid {
        var rng = taskGenerator(seed: seed, metaStep: metaStep, index: index, op: "SinusoidTasks")
        // Uniform in [low, high): the upper ends of the paper's closed ranges have probability zero.
        func uniform(_ range: ClosedRange<Float>) -> Float {
            range.lowerBound + (range.upperBound - range.lowerBound) * rng.nextUniform()
        }
        let amplitude = uniform(Self.amplitudes), phase = uniform(Self.phases)
        let xs = (0..<shots).map { _ in uniform(Self.inputs) }, xq = (0..<queries).map { _ in uniform(Self.inputs) }
        func f(_ x: Float) -> Float { Float(Double(amplitude) * sin(Double(x) - Double(phase))) }
        let task = MetaTask(supportInputs: Tensor(xs, shape: [shots, 1]), supportTargets: .values(Tensor(xs.map(f), shape: [shots, 1])),
                            queryInputs: Tensor(xq, shape: [queries, 1]), queryTargets: .values(Tensor(xq.map(f), shape: [queries, 1])))
        return Sinusoid(amplitude: amplitude, phase: phase, task: task)
    }
}
