import Foundation
import XCTest

// The README's example run, run: a fresh hub in an empty folder (development mode, the
// defaults but for the ports), then every `curl` of the example with the bridge key the hub
// printed, each answer compared with the line under it in README.md. `…` in the README stands
// for a value that differs each run (secrets, tokens, times). The start-up lines are compared
// by shape too: there every number may differ (ports, loops, the open-file limit).
final class ReadmeExampleTests: XCTestCase {
    private struct Step {
        var command: String
        var expected: [String]
    }

    /// The commands of the README's example block, each with the lines printed under it.
    private func exampleSteps() throws -> [Step] {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        guard let section = text.range(of: "## An example run"),
              let open = text.range(of: "```\n", range: section.upperBound..<text.endIndex),
              let close = text.range(of: "\n```", range: open.upperBound..<text.endIndex) else {
            throw TestError("README.md has no example block under '## An example run'")
        }
        var steps: [Step] = []
        var continuing = false
        for line in text[open.upperBound..<close.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(line)
            if continuing {
                steps[steps.count - 1].command += " " + line.trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("$ ") {
                steps.append(Step(command: String(line.dropFirst(2)), expected: []))
            } else if !line.isEmpty, !steps.isEmpty {
                steps[steps.count - 1].expected.append(line)
            }
            continuing = steps.last?.command.hasSuffix("\\") == true
            if continuing { steps[steps.count - 1].command.removeLast() }
        }
        return steps
    }

    /// `line` matches `pattern` where each `…` in the pattern stands for any run of characters
    /// (and, with `numbersVary`, each run of digits for any number).
    private func matches(_ line: String, _ pattern: String, numbersVary: Bool = false) -> Bool {
        var regex = "^"
        var digits = false
        for ch in pattern {
            if ch == "…" { regex += ".*"; digits = false; continue }
            if numbersVary && ch.isASCII && ch.isNumber {
                if !digits { regex += "[0-9]+" }
                digits = true
                continue
            }
            digits = false
            regex += NSRegularExpression.escapedPattern(for: String(ch))
        }
        return line.range(of: regex + "$", options: .regularExpression) != nil
    }

    private func shell(_ command: String, environment: [String: String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func testTheExampleRunIsTrueOnAFreshDataFolder() throws {
        let steps = try exampleSteps()
        XCTAssertEqual(steps.first?.command, "swift run montrose-hub")
        XCTAssertGreaterThanOrEqual(steps.filter { $0.command.hasPrefix("curl ") }.count, 4, "the example's requests were found")
        let folder = TestDirectory.make("readme-example")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let hub = try HubProcess(["--port", "0", "--bridge-port", "0"], currentDirectory: folder)
        defer { hub.signal(SIGKILL) }
        guard let pub = hub.waitForLine(containing: "public listening"), let port = HubProcess.port(in: pub),
              let br = hub.waitForLine(containing: "bridge listening"), let bridge = HubProcess.port(in: br) else {
            throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
        }
        _ = hub.waitForLine(containing: "DEVELOPMENT MODE")
        let localPorts = { (s: String) in
            s.replacingOccurrences(of: "localhost:8080", with: "127.0.0.1:\(port)")
                .replacingOccurrences(of: "localhost:8081", with: "127.0.0.1:\(bridge)")
        }
        // Start-up: every line the README shows, in order, by shape.
        let printed = hub.outputLines
        XCTAssertEqual(printed.count, steps[0].expected.count, "start-up lines: \(printed)")
        for (line, pattern) in zip(printed, steps[0].expected) {
            XCTAssertTrue(matches(line, pattern, numbersVary: true), "start-up line\n  \(line)\nis not as the README shows:\n  \(pattern)")
        }
        guard let keyLine = printed.first(where: { $0.contains("bridge key:") }),
              let key = keyLine.split(separator: " ").last.map(String.init) else {
            throw TestError("no bridge key printed: \(printed)")
        }
        var ran = 0
        for step in steps.dropFirst() {
            if step.command.hasPrefix("KEY=") { continue } // the key printed above, set for every command
            XCTAssertTrue(step.command.hasPrefix("curl "), "the example runs curl only: \(step.command)")
            let answer = try shell(localPorts(step.command), environment: ["KEY": key])
            let lines = answer.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, step.expected.count, "\(step.command)\nprinted\n\(answer)")
            for (line, pattern) in zip(lines, step.expected) {
                XCTAssertTrue(matches(line, pattern), "\(step.command)\nprinted\n  \(line)\nbut the README shows\n  \(pattern)")
            }
            ran += 1
        }
        XCTAssertGreaterThanOrEqual(ran, 4)
    }
}
