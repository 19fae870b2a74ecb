import Testing
@testable import GraftCore

@Suite struct Autograd {
    @Test func frozenSubgraphRecordsNothing() {
        let frozen = sample([4, 3], seed: 1), x = sample([2, 4], seed: 2)
        let features = x.matmul(frozen).relu()
        #expect(features.gradFn == nil && !features.requiresGrad)
        let head = sample([3, 2], seed: 3)
        head.requiresGrad = true
        let out = features.matmul(head)
        #expect(out.gradFn?.name == "matmul")
        #expect(out.gradFn?.inputs.allSatisfy { $0.gradFn == nil } == true)
        out.sum().backward()
        #expect(frozen.grad == nil && head.grad != nil)
    }

    @Test func noGradScopeRecordsNothing() {
        let w = sample([3], seed: 1)
        w.requiresGrad = true
        let y = withNoGrad { (w * w).exp().sum() }
        #expect(y.gradFn == nil)
        let z = withNoGrad { withGrad { (w * w).sum() } }
        #expect(z.gradFn != nil)
    }

    @Test func backwardAccumulatesAndGradLeavesFieldsAlone() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        let loss = (w * w).sum()
        loss.backward()
        #expect(w.grad!.scalars == [2, 4, 6])
        (w * 3).sum().backward()
        #expect(w.grad!.scalars == [5, 7, 9])
        let g = grad(of: (w * w * w).sum(), wrt: [w])[0]
        #expect(g.scalars == [3, 12, 27])
        #expect(w.grad!.scalars == [5, 7, 9])
    }

    @Test func sharedSubexpressionsSumTheirPaths() {
        let x = Tensor([0.5, -1], shape: [2], requiresGrad: true)
        let a = x.tanh()
        let y = (a * a + a * x).sum()  // a used three times, x twice
        let g = grad(of: y, wrt: [x])[0].scalars
        for i in 0..<2 {
            let v = x.scalars[i], t = Float(Foundation.tanh(Double(v))), dt = 1 - t * t
            #expect(Swift.abs(g[i] - (2 * t * dt + dt * v + t)) < 1e-6)
        }
    }

    @Test func gradOfUnusedInputIsZero() {
        let x = Tensor([1, 2], shape: [2], requiresGrad: true), u = Tensor([3], shape: [1], requiresGrad: true)
        let gs = grad(of: (x * 2).sum(), wrt: [x, u])
        #expect(gs[1].scalars == [0])
    }

    @Test func secondOrderOfTwoLayerMLP() {
        let x = sample([4, 3], seed: 1)
        let w1 = sample([5, 3], seed: 2), b1 = sample([5], seed: 3), w2 = sample([2, 5], seed: 4), b2 = sample([2], seed: 5)
        let mlp: ([Tensor]) -> Tensor = { p in
            let h = Tensor.linear(x, weight: p[0], bias: p[1]).tanh()
            return Tensor.crossEntropy(Tensor.linear(h, weight: p[2], bias: p[3]), targets: [0, 1, 1, 0])
        }
        checkGradients([w1, b1, w2, b2], mlp)
        checkSecondOrder([w1, b1, w2, b2], mlp)
    }

    @Test func mamlStyleInnerStepIsDifferentiable() {
        // One inner SGD step w' = w − α∇L(w), then the outer loss at w'; compare d outer / d w with finite differences.
        let x = sample([6, 3], seed: 1), t = [0, 1, 2, 0, 1, 2]
        let w = sample([3, 3], seed: 2)
        checkGradients([w]) { p in
            let inner = Tensor.crossEntropy(x.matmul(p[0]), targets: t)
            let g = grad(of: inner, wrt: [p[0]], createGraph: true)[0]
            let adapted = p[0] - g * 0.5
            return Tensor.crossEntropy(x.matmul(adapted).relu(), targets: t.reversed())
        }
    }
}

/// Shape errors stop the process with a message naming the op and both shapes (exit tests run in a child process).
@Suite struct ShapeErrors {
    @Test func matmulMismatch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5]))
        }
        expectMessage("matmul: shapes [2, 3] and [4, 5] are not aligned", r)
    }

    @Test func badBroadcast() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]) + Tensor.zeros([4])
        }
        expectMessage("add: shapes [2, 3] and [4] cannot be broadcast together", r)
    }

    @Test func badReshape() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).reshaped([4])
        }
        expectMessage("reshape: shape [2, 3] (6 elements) cannot become [4]", r)
    }

    @Test func targetOutOfRange() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.crossEntropy(Tensor.zeros([1, 3]), targets: [7])
        }
        expectMessage("crossEntropy: target 7 out of range for 3 classes", r)
    }
}

import Foundation
