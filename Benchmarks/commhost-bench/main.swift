import Glibc

let usage = """
usage: commhost-bench [--quick] [--scenario NAME[,NAME...]] [--output FILE] [--no-write]
       commhost-bench --profile-dispatch COUNT

Measures commhost beside its baselines and prints a markdown table. A full
run of every scenario rewrites the generated section of BENCHMARKS.md (at
the repository root); --quick or --scenario runs only print, unless
--output FILE is given. Build the whole package first so the commhost
binary and the example plugins sit beside this executable:

  swift build -c release && swift run -c release commhost-bench

scenarios: \(Scenario.all.map(\.name).joined(separator: ", "))

--profile-dispatch COUNT runs only commhost's side of `dispatch` (COUNT
messages, no baselines, no timing), for a profiler:
  valgrind --tool=callgrind commhost-bench --profile-dispatch 100000
"""

/// Writes `text` to stderr (progress and problems; the table goes to stdout).
func note(_ text: String) {
    _ = Array(text.utf8).withUnsafeBytes { ChildProcess.writeAll(STDERR_FILENO, $0) }
}

func fail(_ message: String) -> Never {
    note("commhost-bench: \(message)\n")
    exit(2)
}

var quick = false
var selected: [String] = []
var outputPath: String? = nil
var noWrite = false
var rest = CommandLine.arguments.dropFirst()
while let argument = rest.popFirst() {
    switch argument {
    case "--quick": quick = true
    case "--no-write": noWrite = true
    case "--scenario":
        guard let value = rest.popFirst() else { fail("--scenario needs a name\n\(usage)") }
        selected += value.split(separator: ",").map(String.init)
    case "--output":
        guard let value = rest.popFirst() else { fail("--output needs a file\n\(usage)") }
        outputPath = value
    case "--profile-dispatch":
        guard let value = rest.popFirst(), let count = Int(value), count > 0 else { fail("--profile-dispatch needs a positive count") }
        do {
            try DispatchScenario.profile(count: count)
        } catch {
            fail("\(error)")
        }
        exit(0)
    case "--help", "-h":
        print(usage)
        exit(0)
    default:
        fail("unknown argument \"\(argument)\"\n\(usage)")
    }
}
for name in selected where !Scenario.all.contains(where: { $0.name == name }) {
    fail("unknown scenario \"\(name)\" (known: \(Scenario.all.map(\.name).joined(separator: ", ")))")
}

let settings = quick ? Settings.quick : Settings.full
let scenarios = selected.isEmpty ? Scenario.all : Scenario.all.filter { selected.contains($0.name) }
let tools: Toolbox
do {
    tools = try Toolbox()
} catch {
    fail("\(error)")
}
signal(SIGPIPE, SIG_IGN)

var rows: [Row] = []
var notes: [String] = []
var failed = false
let started = Clock.nanos()
let loadAtStart = Machine.loadAverage()
for scenario in scenarios {
    note("commhost-bench: \(scenario.name): \(scenario.summary)...\n")
    let t0 = Clock.nanos()
    do {
        let produced = try scenario.run(tools, settings)
        rows += produced
        note("commhost-bench: \(scenario.name) done in \(Report.fixed(Clock.seconds(since: t0))) s\n")
    } catch let unavailable as ScenarioUnavailable {
        notes.append("- `\(scenario.name)` not measured: \(unavailable.description)")
        note("commhost-bench: \(scenario.name) not measured: \(unavailable.description)\n")
    } catch {
        failed = true
        notes.append("- `\(scenario.name)` failed: \(error)")
        note("commhost-bench: \(scenario.name) failed: \(error)\n")
    }
}
tools.cleanUp()

let machine = Machine.current(loadAtStart: loadAtStart)
var section = "Run: `commhost-bench\(quick ? " --quick" : "")\(selected.isEmpty ? "" : " --scenario " + selected.joined(separator: ","))`"
section += " (\(Report.fixed(Clock.seconds(since: started))) s; \(settings.warmup) warm-up and \(settings.rounds) measured rounds per scenario; value = median of the rounds, spread = half the min–max range over the median)\n\n"
section += machine.markdown + "\n"
section += Report.markdown(rows)
if !notes.isEmpty { section += "\n" + notes.joined(separator: "\n") + "\n" }
print(section)

let fullRun = !quick && selected.isEmpty
if !noWrite, let target = outputPath ?? (fullRun ? Paths.repoRoot + "/BENCHMARKS.md" : nil) {
    do {
        try ResultsFile.write(section: section, to: target)
        note("commhost-bench: wrote the results to \(target)\n")
    } catch {
        note("commhost-bench: could not write \(target): \(error)\n")
        failed = true
    }
}
exit(failed ? 1 : 0)
