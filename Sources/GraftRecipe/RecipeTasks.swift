import GraftCore
import GraftIO
import GraftNN
import GraftTrain

/// Multi-task training: `tasks:`, a list of tasks sharing the model's body, each with a linear head of its own, and
/// `task-weighting:`, how their losses add up. Every task's labels derive from the data's main label: the main task
/// itself, or a mapping of its classes (`map: {0: even, 1: odd, …}`, or `groups: {low: [0, 1, 2, 3, 4], …}`).
public struct TasksSpec: Sendable {
    public struct Task: Sendable {
        public var name: String
        /// (main class, this task's class) pairs as written; nil for the main label itself.
        public var mapping: [(main: String, task: String)]?
        /// The weight under `task-weighting: fixed`.
        public var weight: Float
        /// Where the mapping was written, for errors found once the data's classes are known.
        var field: String
        var line: Int?
    }

    public var tasks: [Task]
    public var weighting: TaskWeighting
    let file: String

    /// The task losses a recipe may name.
    static let losses = ["cross-entropy"]
    static let weightings = ["uniform", "fixed", "uncertainty", "dwa"]

    /// Reads `tasks` and `task-weighting` of the recipe's top level.
    init(_ top: inout Fields) throws {
        file = top.file
        var method = "uniform"
        var temperature: Double?
        if let node = top.node("task-weighting") {
            if node.scalar != nil {
                method = try top.choice("task-weighting", Self.weightings)!
            } else {
                var w = try Fields(node, path: "task-weighting", file: file)
                method = try w.choice("method", Self.weightings, default: "uniform")!
                temperature = try w.double("temperature")
                if temperature != nil, method != "dwa" { throw w.error("temperature", "is DWA's (method: dwa); \(method) has none") }
                if let t = temperature, !(t > 0) { throw w.error("temperature", "must be > 0, got \(t)") }
                try w.finish()
            }
        }
        guard let list = top.node("tasks") else {
            throw top.error("tasks", "is required with task-weighting: list the tasks (name, and map or groups for a derived one)")
        }
        guard let items = list.items, items.count >= 2 else {
            throw RecipeError(file: file, line: list.line, field: "tasks", "must be a list of at least two tasks")
        }
        tasks = []
        for (i, item) in items.enumerated() {
            var f = try Fields(item, path: "tasks.\(i)", file: file)
            guard let name = try f.string("name"), !name.isEmpty else { throw f.error("name", "is required (a task's name)") }
            if tasks.contains(where: { $0.name == name }) { throw f.error("name", "\(quotedExcerpt(name)) names two tasks") }
            let from = try f.string("from", default: "label")
            guard from == "label" else {
                throw f.error("from", "\(quotedExcerpt(from)) is not supported: a task's labels come from the data's main label (from: label), mapped by map or groups")
            }
            _ = try f.choice("loss", Self.losses)
            let weight = try f.double("weight")
            if weight != nil, method != "fixed" { throw f.error("weight", "is read only with task-weighting: fixed (here \(method))") }
            if let weight, !(weight >= 0) { throw f.error("weight", "must be ≥ 0, got \(weight)") }
            if f.has("map") && f.has("groups") { throw f.error("groups", "give map or groups, not both") }
            var mapping: [(String, String)]?
            let key = f.has("groups") ? "groups" : "map"
            if let node = f.node(key) {
                guard let entries = node.entries, !entries.isEmpty else { throw f.error(key, "must be a mapping") }
                mapping = try entries.flatMap { entry -> [(String, String)] in
                    if key == "map" {
                        guard let to = entry.value.scalar, !to.isEmpty else { throw f.error(key, "class \(quotedExcerpt(entry.key)) must map to one class name") }
                        return [(entry.key, to)]
                    }
                    guard let members = entry.value.items?.compactMap(\.scalar), members.count == entry.value.items?.count, !members.isEmpty else {
                        throw f.error(key, "group \(quotedExcerpt(entry.key)) must be a list of the main label's classes")
                    }
                    return members.map { ($0, entry.key) }
                }
            }
            tasks.append(Task(name: name, mapping: mapping, weight: Float(weight ?? 1), field: f.field(key), line: f.line(of: key)))
            try f.finish()
        }
        switch method {
        case "fixed":
            if tasks.allSatisfy({ $0.weight == 0 }) { throw top.error("tasks", "every task's weight is 0: nothing would train") }
            weighting = .fixed(tasks.map(\.weight))
        case "uncertainty": weighting = .uncertainty
        case "dwa": weighting = .dwa(temperature: temperature ?? 2)
        default: weighting = .uniform
        }
    }

    /// The model's heads for data whose main label has `classNames`: every mapping must send each class to one of
    /// the task's, naming no other.
    public func layout(classNames: [String]) throws -> TaskLayout {
        TaskLayout(try tasks.map { task in
            guard let mapping = task.mapping else { return (task.name, classNames, Array(classNames.indices)) }
            func fail(_ problem: String) -> RecipeError { RecipeError(file: file, line: task.line, field: task.field, problem) }
            var classes: [String] = [], labelOf = [Int?](repeating: nil, count: classNames.count)
            for (main, to) in mapping {
                guard let c = classNames.firstIndex(of: main) else {
                    throw fail("\(quotedExcerpt(main)) is not a class of the data (\(classNames.joined(separator: ", ")))")
                }
                guard labelOf[c] == nil else { throw fail("class \(quotedExcerpt(main)) is mapped twice") }
                if !classes.contains(to) { classes.append(to) }
                labelOf[c] = classes.firstIndex(of: to)
            }
            if let missing = labelOf.firstIndex(where: { $0 == nil }) {
                throw fail("class \(quotedExcerpt(classNames[missing])) of the data is not mapped (every class needs a \(task.name) class)")
            }
            if classes.count < 2 { throw fail("maps every class to \(quotedExcerpt(classes[0])): a task needs two classes") }
            return (task.name, classes, labelOf.map { $0! })
        })
    }

    /// How the recipe names the weighting, for logs.
    public var weightingName: String {
        switch weighting {
        case .uniform: "uniform"
        case .fixed: "fixed (" + tasks.map { "\($0.name) \($0.weight)" }.joined(separator: ", ") + ")"
        case .uncertainty: "uncertainty (learned log-variances, Kendall et al. 2018)"
        case let .dwa(t): "dwa (temperature \(t))"
        }
    }
}
