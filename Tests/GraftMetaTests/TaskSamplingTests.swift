import Foundation
import Testing
import GraftCore
import GraftData
import GraftMeta

/// Class splits, episodes and sinusoid tasks: contents, ranges and determinism.
@Suite struct TaskSamplingTests {
    /// 20 classes of 9 rows each, rows of the classes interleaved.
    static let labels: [Int] = (0..<180).map { ($0 * 7) % 20 }

    @Test func classSplitIsDisjointCoveringAndSeeded() {
        let split = ClassSplit(labels: Self.labels, validation: 0.2, test: 0.25, seed: 4)
        #expect(split.validation.count == 4 && split.test.count == 5 && split.train.count == 11)
        let all = split.train + split.validation + split.test
        #expect(Set(all).count == all.count, "a class is in two parts")
        #expect(all.sorted() == Array(0..<20))
        #expect(split.train == split.train.sorted())
        #expect(split == ClassSplit(labels: Self.labels, validation: 0.2, test: 0.25, seed: 4))
        #expect(split != ClassSplit(labels: Self.labels, validation: 0.2, test: 0.25, seed: 5))
        let explicit = ClassSplit(train: [3, 1, 2], validation: [0], test: [5, 4])
        #expect(explicit.train == [1, 2, 3] && explicit.validation == [0] && explicit.test == [4, 5])
    }

    @Test func overlappingExplicitSplitStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = ClassSplit(train: [0, 1, 2], validation: [2], test: [3])
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("ClassSplit: class 2 is in both train and validation"), "stderr was: \(stderr)")
    }

    @Test func episodesHaveDistinctClassesRowsAndRemappedLabels() {
        let split = ClassSplit(labels: Self.labels, validation: 0.2, test: 0.2, seed: 1)
        let sampler = EpisodeSampler(labels: Self.labels, classes: split.train, ways: 5, shots: 3, queries: 4, seed: 77)
        #expect(sampler.classes == split.train)
        var seenClasses = Set<Int>()
        for step in 0..<20 {
            for index in 0..<4 {
                let e = sampler.task(metaStep: step, index: index)
                #expect(e.ways == 5 && Set(e.classes).count == 5)
                #expect(e.classes.allSatisfy { split.train.contains($0) })
                seenClasses.formUnion(e.classes)
                #expect(e.supportLabels == (0..<5).flatMap { Array(repeating: $0, count: 3) })
                #expect(e.queryLabels == (0..<5).flatMap { Array(repeating: $0, count: 4) })
                #expect(Set(e.supportRows + e.queryRows).count == 5 * 7, "rows repeat within an episode")
                for (row, label) in zip(e.supportRows + e.queryRows, e.supportLabels + e.queryLabels) {
                    #expect(Self.labels[row] == e.classes[label], "row \(row) is not of class \(e.classes[label])")
                }
            }
        }
        #expect(seenClasses == Set(split.train), "80 episodes should reach every training class")
    }

    /// A task depends on (seed, meta-step, index) only: drawing in another order, from another sampler value, or
    /// after other draws gives the same episode; other steps, indices or seeds give others.
    @Test func episodesAreDeterministicWhateverTheCallOrder() {
        let keys = [(0, 0), (0, 1), (1, 0), (7, 3), (1000, 12)]
        let a = EpisodeSampler(labels: Self.labels, ways: 5, shots: 1, queries: 5, seed: 9)
        let forward = keys.map { a.task(metaStep: $0.0, index: $0.1) }
        let b = EpisodeSampler(labels: Self.labels, ways: 5, shots: 1, queries: 5, seed: 9)
        _ = (0..<10).map { b.task(metaStep: 3, index: $0) }
        let backward = keys.reversed().map { b.task(metaStep: $0.0, index: $0.1) }
        #expect(forward == Array(backward.reversed()))
        #expect(Set(forward.map(\.supportRows)).count == keys.count, "different (step, index) gave the same episode")
        let otherSeed = EpisodeSampler(labels: Self.labels, ways: 5, shots: 1, queries: 5, seed: 10)
        #expect(otherSeed.task(metaStep: 0, index: 0) != forward[0])
    }

    @Test func episodeTasksGatherTheirRows() {
        let features = (0..<180).flatMap { row in (0..<4).map { Float(row * 10 + $0) } }
        let data = LabelledData(features: features, labels: Self.labels, featureCount: 4)
        let episode = EpisodeSampler(labels: Self.labels, ways: 3, shots: 2, queries: 1, seed: 2).task(metaStep: 5, index: 0)
        let task = episode.task(from: data, sampleShape: [1, 2, 2])
        #expect(task.supportInputs.shape == [6, 1, 2, 2] && task.queryInputs.shape == [3, 1, 2, 2])
        #expect(task.supportInputs.scalars == episode.supportRows.flatMap { row in (0..<4).map { Float(row * 10 + $0) } })
        let fromTensor = episode.task(inputs: Tensor(features, shape: [180, 4]))
        #expect(fromTensor.queryInputs.scalars == task.queryInputs.scalars)
        guard case let .classes(labels) = task.queryTargets else { Issue.record("class targets expected"); return }
        #expect(labels == episode.queryLabels)
    }

    @Test func sinusoidTasksFollowThePaper() {
        let tasks = SinusoidTasks(shots: 10, queries: 15, seed: 3)
        var amplitudes: [Float] = [], phases: [Float] = [], inputs: [Float] = []
        for index in 0..<300 {
            let s = tasks.task(metaStep: index / 10, index: index % 10)
            amplitudes.append(s.amplitude)
            phases.append(s.phase)
            let (xs, xq) = (s.task.supportInputs, s.task.queryInputs)
            #expect(xs.shape == [10, 1] && xq.shape == [15, 1])
            inputs += xs.scalars + xq.scalars
            let ys = targetValues(s.task.supportTargets), yq = targetValues(s.task.queryTargets)
            #expect(ys.shape == [10, 1] && yq.shape == [15, 1])
            for (x, y) in zip(xs.scalars + xq.scalars, ys.scalars + yq.scalars) {
                #expect(abs(Double(y) - Double(s.amplitude) * sin(Double(x) - Double(s.phase))) < 1e-5)
            }
        }
        #expect(amplitudes.allSatisfy { $0 >= 0.1 && $0 <= 5 } && amplitudes.min()! < 0.3 && amplitudes.max()! > 4.8)
        #expect(phases.allSatisfy { $0 >= 0 && $0 <= .pi } && phases.min()! < 0.1 && phases.max()! > 3.0)
        #expect(inputs.allSatisfy { $0 >= -5 && $0 <= 5 } && inputs.min()! < -4.9 && inputs.max()! > 4.9)
        // Roughly uniform: the means sit near the middles of the ranges.
        #expect(abs(amplitudes.reduce(0, +) / 300 - 2.55) < 0.3)
        #expect(abs(inputs.reduce(0, +) / Float(inputs.count)) < 0.2)

        let again = SinusoidTasks(shots: 10, queries: 15, seed: 3)
        _ = again.task(metaStep: 9, index: 9)
        let (first, repeated) = (tasks.task(metaStep: 4, index: 2), again.task(metaStep: 4, index: 2))
        #expect(first.amplitude == repeated.amplitude && first.phase == repeated.phase)
        #expect(first.task.queryInputs.scalars == repeated.task.queryInputs.scalars)
        #expect(tasks.task(metaStep: 4, index: 3).amplitude != first.amplitude)
    }
}
