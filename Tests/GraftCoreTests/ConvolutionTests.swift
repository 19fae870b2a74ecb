import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import GraftCore

/// conv2d straight from its definition (seven nested loops, Double accumulators) and, for an output gradient `g`,
/// the gradients of ⟨y, g⟩ with respect to x and w.
func referenceConv2d(_ x: Tensor, _ w: Tensor, bias: Tensor?, gradient g: Tensor? = nil, stride: (Int, Int),
                     edges: (top: Int, bottom: Int, left: Int, right: Int), dilation: (Int, Int),
                     groups: Int) -> (y: [Float], shape: [Int], dx: [Float], dw: [Float]) {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let oh = (h + edges.top + edges.bottom - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let ow = (wd + edges.left + edges.right - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    let xs = x.scalars, ws = w.scalars, gs = g?.scalars
    var y = [Float](repeating: 0, count: n * cout * oh * ow)
    var dx = [Double](repeating: 0, count: xs.count), dw = [Double](repeating: 0, count: ws.count)
    for b in 0..<n {
        for co in 0..<cout {
            let group = co / (cout / groups)
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let o = ((b * cout + co) * oh + oy) * ow + ox
                    var acc = Double(bias?.scalars[co] ?? 0)
                    for ci in 0..<cg {
                        for ki in 0..<kh {
                            for kj in 0..<kw {
                                let iy = oy * stride.0 - edges.top + ki * dilation.0
                                let ix = ox * stride.1 - edges.left + kj * dilation.1
                                guard iy >= 0 && iy < h && ix >= 0 && ix < wd else { continue }
                                let xi = ((b * cin + group * cg + ci) * h + iy) * wd + ix
                                let wi = ((co * cg + ci) * kh + ki) * kw + kj
                                acc += Double(xs[xi]) * Double(ws[wi])
                                if let gs {
                                    dx[xi] += Double(gs[o]) * Double(ws[wi])
                                    dw[wi] += Double(gs[o]) * Double(xs[xi])
                                }
                            }
                        }
                    }
                    y[o] = Float(acc)
                }
            }
        }
    }
    return (y, [n, cout, oh, ow], dx.map(Float.init), dw.map(Float.init))
}

struct ConvCase: CustomTestStringConvertible, Sendable {
    let name: String
    let input: [Int], weight: [Int]
    var bias = true
    var stride = (1, 1)
    var padding = Padding.valid
    /// The padding edges the reference uses, worked out by hand for `.same`.
    var edges = (top: 0, bottom: 0, left: 0, right: 0)
    var dilation = (1, 1)
    var groups = 1

    var testDescription: String { name }

    func tensors() -> (x: Tensor, w: Tensor, b: Tensor?) {
        (sample(input, seed: 1), sample(weight, seed: 2), bias ? sample([weight[0]], seed: 3) : nil)
    }

    func conv(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
        Tensor.conv2d(x, weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    static let all: [ConvCase] = [
        ConvCase(name: "3×3 pad 1", input: [2, 3, 6, 5], weight: [4, 3, 3, 3], padding: .symmetric(1, 1),
                 edges: (1, 1, 1, 1)),
        ConvCase(name: "stride 2 unpadded", input: [2, 3, 7, 6], weight: [4, 3, 3, 3], bias: false, stride: (2, 2)),
        ConvCase(name: "asymmetric padding, 2×3 kernel, stride (2, 1)", input: [1, 2, 6, 7], weight: [3, 2, 2, 3],
                 stride: (2, 1), padding: .asymmetric(top: 0, bottom: 2, left: 1, right: 0), edges: (0, 2, 1, 0)),
        ConvCase(name: "same, stride 2", input: [2, 3, 8, 7], weight: [4, 3, 3, 3], stride: (2, 2), padding: .same,
                 edges: (0, 1, 1, 1)),
        ConvCase(name: "dilation 2", input: [1, 2, 7, 7], weight: [3, 2, 3, 3], bias: false, padding: .symmetric(2, 1),
                 edges: (2, 2, 1, 1), dilation: (2, 2)),
        ConvCase(name: "same, dilation (2, 1)", input: [1, 2, 6, 5], weight: [2, 2, 3, 2], padding: .same,
                 edges: (2, 2, 0, 1), dilation: (2, 1)),
        ConvCase(name: "groups 2", input: [2, 4, 5, 5], weight: [6, 2, 3, 3], padding: .symmetric(1, 1),
                 edges: (1, 1, 1, 1), groups: 2),
        ConvCase(name: "depthwise", input: [2, 3, 6, 6], weight: [3, 1, 3, 3], padding: .symmetric(1, 1),
                 edges: (1, 1, 1, 1), groups: 3),
        ConvCase(name: "depthwise ×2, same, stride 2", input: [1, 2, 7, 6], weight: [4, 1, 3, 3], bias: false,
                 stride: (2, 2), padding: .same, edges: (1, 1, 0, 1), groups: 2),
        ConvCase(name: "depthwise 2×3, stride (1, 2), dilation (2, 1)", input: [1, 3, 7, 7], weight: [3, 1, 2, 3],
                 stride: (1, 2), padding: .asymmetric(top: 1, bottom: 0, left: 2, right: 1), edges: (1, 0, 2, 1),
                 dilation: (2, 1), groups: 3),
        ConvCase(name: "depthwise 3×3 stride 2 on a 1-column input", input: [1, 2, 5, 1], weight: [2, 1, 3, 3],
                 stride: (2, 2), padding: .symmetric(1, 1), edges: (1, 1, 1, 1), groups: 2),
        ConvCase(name: "depthwise 5×5 stride 2, 37 columns", input: [2, 2, 9, 37], weight: [2, 1, 5, 5],
                 stride: (2, 2), padding: .symmetric(2, 2), edges: (2, 2, 2, 2), groups: 2),
        ConvCase(name: "depthwise 3×3 stride 1, dilation (2, 1), asymmetric padding, 35 columns", input: [2, 2, 7, 35],
                 weight: [2, 1, 3, 3], padding: .asymmetric(top: 2, bottom: 0, left: 1, right: 2), edges: (2, 0, 1, 2),
                 dilation: (2, 1), groups: 2),
        ConvCase(name: "1×1, one image", input: [1, 5, 4, 3], weight: [3, 5, 1, 1]),
        ConvCase(name: "1×1, batched", input: [3, 5, 4, 3], weight: [3, 5, 1, 1], bias: false),
        ConvCase(name: "1×1 stride 2, groups 2", input: [2, 4, 5, 5], weight: [4, 2, 1, 1], stride: (2, 2), groups: 2),
        ConvCase(name: "5×5 pad 2", input: [2, 2, 5, 6], weight: [2, 2, 5, 5], padding: .symmetric(2, 2),
                 edges: (2, 2, 2, 2)),
    ]

    /// Large enough output planes that each image gets its own GEMM, a pointwise one read in place, and rows long
    /// enough for im2col's vector loads at stride 2.
    static let large: [ConvCase] = [
        ConvCase(name: "33×33, one image per GEMM", input: [2, 3, 33, 33], weight: [4, 3, 3, 3], stride: (1, 1),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        ConvCase(name: "33×33 1×1 in place, groups 2", input: [2, 4, 33, 33], weight: [2, 2, 1, 1], groups: 2),
        ConvCase(name: "33×33 depthwise stride 2", input: [2, 2, 33, 33], weight: [2, 1, 3, 3], stride: (2, 2),
                 padding: .same, edges: (1, 1, 1, 1), groups: 2),
        ConvCase(name: "stride 2, rows of 12 outputs", input: [2, 3, 9, 24], weight: [4, 3, 3, 3], stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
    ]

    /// Convolutions the Winograd F(4×4, 3×3) path computes, forward and input gradient: odd sizes that leave partial
    /// tiles, every padding from 0 to 2, a channel count with a SIMD8 tail, and several images per pass.
    static let winograd: [ConvCase] = [
        ConvCase(name: "Winograd, pad 1, partial tiles", input: [2, 16, 10, 9], weight: [24, 16, 3, 3],
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        ConvCase(name: "Winograd, unpadded", input: [1, 24, 12, 11], weight: [16, 24, 3, 3], bias: false),
        ConvCase(name: "Winograd, asymmetric padding, 40 channels", input: [2, 40, 9, 10], weight: [16, 40, 3, 3],
                 padding: .asymmetric(top: 2, bottom: 0, left: 0, right: 1), edges: (2, 0, 0, 1)),
        ConvCase(name: "Winograd, same, 3 images", input: [3, 32, 16, 16], weight: [32, 32, 3, 3], padding: .same,
                 edges: (1, 1, 1, 1)),
    ]

    /// Small maps that `TapClasses` splits by the taps each output sees: ResNet's deep stages on 32 px images
    /// (2×2 and 1×1 maps, their stride-2 entries), a 7×7 stride-2 stem on a tiny image, uneven padding and
    /// dilation, and outputs that see no tap at all (their value is the bias).
    static let smallMaps: [ConvCase] = [
        ConvCase(name: "2×2 map, pad 1", input: [3, 16, 2, 2], weight: [8, 16, 3, 3], padding: .symmetric(1, 1),
                 edges: (1, 1, 1, 1)),
        ConvCase(name: "1×1 map, pad 1", input: [4, 8, 1, 1], weight: [6, 8, 3, 3], bias: false,
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        ConvCase(name: "4×4 → 2×2, stride 2", input: [2, 8, 4, 4], weight: [8, 8, 3, 3], stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        ConvCase(name: "2×2 → 1×1, stride 2", input: [2, 8, 2, 2], weight: [4, 8, 3, 3], stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        ConvCase(name: "7×7 stride 2 stem on 6×5, one image", input: [1, 3, 6, 5], weight: [4, 3, 7, 7], stride: (2, 2),
                 padding: .symmetric(3, 3), edges: (3, 3, 3, 3)),
        ConvCase(name: "3×2 map, asymmetric padding, dilation (1, 2)", input: [2, 4, 3, 2], weight: [5, 4, 3, 2],
                 padding: .asymmetric(top: 2, bottom: 1, left: 1, right: 2), edges: (2, 1, 1, 2), dilation: (1, 2)),
        ConvCase(name: "outputs beyond every tap", input: [2, 3, 1, 2], weight: [2, 3, 3, 3],
                 padding: .symmetric(3, 2), edges: (3, 3, 2, 2)),
    ]
}

@Suite struct Convolution {
    @Test(arguments: ConvCase.all + ConvCase.large + ConvCase.winograd + ConvCase.smallMaps)
    func forwardAndBackwardMatchReference(_ c: ConvCase) {
        let (x, w, b) = c.tensors()
        x.requiresGrad = true
        w.requiresGrad = true
        b?.requiresGrad = true
        let y = c.conv(x, w, b)
        let g = sample(y.shape, seed: 4)
        let ref = referenceConv2d(x, w, bias: b, gradient: g, stride: c.stride, edges: c.edges, dilation: c.dilation,
                                  groups: c.groups)
        #expect(y.shape == ref.shape)
        expectClose(y.scalars, ref.y, atol: 1e-4)
        let grads = grad(of: y, wrt: [x, w], gradOutput: g)
        expectClose(grads[0].scalars, ref.dx, atol: 1e-4)
        expectClose(grads[1].scalars, ref.dw, atol: 1e-4)
    }

    @Test(arguments: ConvCase.all)
    func gradientsMatchFiniteDifferences(_ c: ConvCase) {
        let (x, w, b) = c.tensors()
        checkGradients([x, w] + (b.map { [$0] } ?? [])) { t in c.conv(t[0], t[1], t.count > 2 ? t[2] : nil) }
    }

    /// The Winograd cases do take that path, both ways, and its gradients match finite differences.
    @Test func winogradPathAndGradients() {
        for c in ConvCase.winograd {
            let (x, w, _) = c.tensors()
            let y = c.conv(x, w, nil)
            let geo = ConvGeometry(h: c.input[2], w: c.input[3], kh: 3, kw: 3, oh: y.shape[2], ow: y.shape[3],
                                   strideH: 1, strideW: 1, dilationH: 1, dilationW: 1, top: c.edges.top,
                                   left: c.edges.left, groups: 1)
            #expect(WinogradConvolution.applies(cin: c.input[1], cout: c.weight[0], geo), "\(c.name)")
        }
        let small = ConvCase(name: "", input: [1, 16, 8, 8], weight: [16, 16, 3, 3], padding: .symmetric(1, 1))
        let (x, w, b) = small.tensors()
        checkGradients([x, w, b!]) { t in small.conv(t[0], t[1], t[2]) }
    }

    /// The small-map cases do take the split path, and its gradients match finite differences.
    @Test(arguments: ConvCase.smallMaps)
    func tapClassesPathAndGradients(_ c: ConvCase) {
        let (x, w, b) = c.tensors()
        let geo = Tensor.convGeometry(x, weight: w, bias: b, stride: c.stride, padding: c.padding,
                                      dilation: c.dilation, groups: c.groups)
        #expect(TapClasses(cin: c.input[1], cout: c.weight[0], geo) != nil)
        checkGradients([x, w] + (b.map { [$0] } ?? [])) { t in c.conv(t[0], t[1], t.count > 2 ? t[2] : nil) }
    }

    @Test func secondOrder() {
        let grouped = ConvCase(name: "", input: [1, 4, 5, 4], weight: [4, 2, 3, 2], stride: (2, 1),
                               padding: .asymmetric(top: 1, bottom: 0, left: 0, right: 1), dilation: (1, 2), groups: 2)
        let depthwise = ConvCase(name: "", input: [1, 2, 5, 5], weight: [4, 1, 3, 3], stride: (2, 2), padding: .same,
                                 groups: 2)
        for c in [grouped, depthwise] {
            let (x, w, b) = c.tensors()
            checkSecondOrder([x, w, b!]) { t in c.conv(t[0], t[1], t[2]).tanh() }
        }
        let bilinear = ConvCase(name: "", input: [1, 3, 8, 7], weight: [4, 3, 3, 3], bias: false, stride: (2, 2),
                                padding: .same)
        let (x, w, _) = bilinear.tensors()
        checkSecondOrder([x, w]) { t in bilinear.conv(t[0], t[1], nil) }
    }

    /// The two gradient ops are themselves differentiable, with each other and conv as their rules.
    @Test func gradientOpsHaveGradients() {
        let geo = ConvGeometry(h: 5, w: 6, kh: 3, kw: 2, oh: 3, ow: 3, strideH: 2, strideW: 2, dilationH: 1, dilationW: 2,
                               top: 1, left: 0, groups: 2)
        let x = sample([2, 4, 5, 6], seed: 1), w = sample([6, 2, 3, 2], seed: 2), g = sample([2, 6, 3, 3], seed: 3)
        checkGradients([g, w]) { Tensor.convInputGrad($0[0], $0[1], geo) }
        checkGradients([x, g]) { Tensor.convWeightGrad($0[0], $0[1], geo) }
    }

    @Test func samePaddingEdges() {
        let same = Padding.same
        #expect(same.edges(size: (7, 8), kernel: (3, 3), stride: (2, 2), dilation: (1, 1)) == (1, 1, 0, 1))
        #expect(same.edges(size: (5, 6), kernel: (3, 1), stride: (1, 2), dilation: (2, 1)) == (2, 2, 0, 0))
        #expect(same.edges(size: (224, 224), kernel: (3, 3), stride: (2, 2), dilation: (1, 1)) == (0, 1, 0, 1))
        #expect(same.edges(size: (112, 112), kernel: (5, 5), stride: (1, 1), dilation: (1, 1)) == (2, 2, 2, 2))
        let y = Tensor.conv2d(Tensor.zeros([1, 1, 224, 224]), weight: Tensor.zeros([1, 1, 3, 3]), stride: (2, 2), padding: .same)
        #expect(y.shape == [1, 1, 112, 112])
    }

    @Test func biasOnlyGradientIsChannelSum() {
        let x = sample([2, 3, 4, 4], seed: 1), w = sample([2, 3, 3, 3], seed: 2), b = Tensor.zeros([2], requiresGrad: true)
        Tensor.conv2d(x, weight: w, bias: b, padding: .symmetric(1, 1)).sum().backward()
        #expect(b.grad!.scalars == [32, 32])
    }
}

/// Shape errors stop the process with a message naming conv2d and the shapes involved.
@Suite struct ConvolutionShapeErrors {
    @Test func channelMismatch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.conv2d(Tensor.zeros([2, 3, 8, 8]), weight: Tensor.zeros([4, 5, 3, 3]))
        }
        expectMessage("conv2d: input [2, 3, 8, 8] has 3 channels, weight [4, 5, 3, 3] expects 5 (groups 1)", r)
    }

    @Test func groupsDoNotDivideOutputs() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.conv2d(Tensor.zeros([1, 4, 8, 8]), weight: Tensor.zeros([3, 2, 3, 3]), groups: 2)
        }
        expectMessage("conv2d: weight [3, 2, 3, 3] has 3 output channels, not divisible by groups 2", r)
    }

    @Test func badBias() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.conv2d(Tensor.zeros([1, 2, 4, 4]), weight: Tensor.zeros([3, 2, 3, 3]), bias: Tensor.zeros([2]))
        }
        expectMessage("conv2d: bias [2] does not fit weight [3, 2, 3, 3]", r)
    }

    @Test func inputSmallerThanKernel() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.conv2d(Tensor.zeros([1, 1, 2, 5]), weight: Tensor.zeros([1, 1, 3, 3]))
        }
        expectMessage("conv2d: input [1, 1, 2, 5] padded by (top: 0, bottom: 0, left: 0, right: 0) is smaller than weight [1, 1, 3, 3]", r)
    }
}

/// A training step that repeats its shapes takes every buffer from the pool its previous step filled.
@Suite struct SteadyStateBuffers {
    /// An eighth of memory shared by the node's ranks, within 1–8 GiB, unless GRAFT_BUFFER_POOL_MB says otherwise.
    @Test func poolLimit() {
        let gib = 1 << 30
        #expect(BufferPool.limit(environment: [:], physicalMemory: 24 * gib) == 3 * gib)
        #expect(BufferPool.limit(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], physicalMemory: 24 * gib) == 3 * gib / 2)
        #expect(BufferPool.limit(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "8"], physicalMemory: 24 * gib) == gib)
        #expect(BufferPool.limit(environment: [:], physicalMemory: 512 * gib) == 8 * gib)
        #expect(BufferPool.limit(environment: ["GRAFT_BUFFER_POOL_MB": "100", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"],
                                 physicalMemory: 24 * gib) == 100 << 20)
    }

    @Test func repeatedStepTakesNoNewBuffers() async {
        // In a process of its own: other tests allocating at the same time would move the counter.
        await #expect(processExitsWith: .success) {
            var rng = RandomGenerator(seed: 1)
            let conv = Tensor.randomNormal([16, 16, 3, 3], std: 0.1, using: &rng)
            let dense = Tensor.randomNormal([16 * 16 * 16, 10], std: 0.01, using: &rng)
            for p in [conv, dense] { p.requiresGrad = true }
            let x = Tensor.randomNormal([8, 16, 16, 16], using: &rng)
            func step() {
                let features = Tensor.conv2d(x, weight: conv, padding: .symmetric(1, 1)).relu().reshaped([8, 16 * 16 * 16])
                let y = features.matmul(dense)
                (y * y).mean().backward()
                withNoGrad {
                    for p in [conv, dense] {
                        p.pointer.update(from: (p - 0.01 * p.grad!).pointer, count: p.count)
                        p.grad = nil
                    }
                }
            }
            step()
            step()
            let before = Storage.freshAllocations
            step()
            if Storage.freshAllocations != before || before == 0 { exit(1) }
        }
    }
}
