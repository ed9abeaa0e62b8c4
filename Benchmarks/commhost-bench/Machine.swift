import Glibc

/// The machine and toolchain a run was measured on.
struct Machine {
    var cpuModel: String
    var cores: Int
    var toolchain: String
    var kernel: String
    var date: String
    /// /proc/loadavg's 1-minute figure when the run started and ended: other
    /// processes' load, which moves absolute numbers (ratios less, since
    /// each scenario interleaves its rounds with its baseline's).
    var loadAtStart: String
    var loadAtEnd: String = ""

    /// How this executable was built (numbers from a debug build mean little).
    static var buildConfiguration: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    /// The 1-minute load average.
    static func loadAverage() -> String {
        String(readSmallFile("/proc/loadavg")?.split(separator: " ").first ?? "?")
    }

    static func current(loadAtStart: String) -> Machine {
        var model = "unknown CPU"
        if let info = readSmallFile("/proc/cpuinfo") {
            for line in info.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    model = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
                }
                break
            }
        }
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var toolchain = "unknown toolchain"
        if let swift = ["/usr/bin/swift", "/opt/swift/usr/bin/swift"].first(where: Paths.exists),
           let result = try? runProgram([swift, "--version"]), result.status == 0,
           let first = result.output.split(separator: "\n").first(where: { $0.contains("Swift version") }) {
            toolchain = String(first)
        }
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        let date = "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday)) \(pad(parts.tm_hour)):\(pad(parts.tm_min)) UTC"
        return Machine(cpuModel: model, cores: cores, toolchain: toolchain, kernel: "Linux " + release, date: date,
                       loadAtStart: loadAtStart, loadAtEnd: loadAverage())
    }

    private static func pad(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }

    var markdown: String {
        "- machine: \(cpuModel), \(cores) cores, \(kernel); load average (1 min) \(loadAtStart) at the start, \(loadAtEnd) at the end\n- toolchain: \(toolchain), \(Machine.buildConfiguration) build\n- date: \(date)\n"
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
