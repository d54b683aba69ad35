import CLinux
import Foundation
import Glibc

// hub-load: a load generator that speaks the Montrose Hub protocol (see loadtest/README.md).
//   hub-load chat --url ws://127.0.0.1:PORT/ws --data DIR [--conversations N] [--duration S] ...
//   hub-load notify | connections | fanout | echo | broadcast | store ...   (usage of each: SCENARIO --help)
// Exit status: 0 when every check passed, 1 when a check failed or errors occurred, 2 on a
// usage error, 3 when the backstop alarm fired.

montrose_line_buffer_stdout()
signal(SIGPIPE, SIG_IGN)

let scenarios = ["chat", "notify", "connections", "fanout", "echo", "broadcast", "store"]
let arguments = CommandLine.arguments.dropFirst()
guard let scenario = arguments.first, scenarios.contains(scenario) else {
    let all = [ChatOptions.usage, NotifyOptions.usage, ConnectionsOptions.usage, FanoutOptions.usage, EchoOptions.usage,
               BroadcastOptions.usage, StoreOptions.usage, CommonOptions.usage]
    FileHandle.standardError.write(Data("hub-load: the scenario must be one of \(scenarios.joined(separator: ", "))\n\(all.joined(separator: "\n"))\n".utf8))
    exit(2)
}

func usageFailure(_ error: UsageError) -> Never {
    FileHandle.standardError.write(Data("hub-load: \(error.message)\n".utf8))
    exit(2)
}

// Each scenario: parse its flags (usage error: exit 2), make sure its connections fit under
// the open-file limit, arm the backstop beyond the sum of its own deadlines, run.
switch scenario {
case "notify":
    do {
        let o = try NotifyOptions.parse(arguments.dropFirst())
        _ = montrose_raise_open_file_limit()
        RunGuards.armBackstop(seconds: 4 * o.timeout + 30) // every phase has its own bound
        exit(NotifyScenario(options: o).run() ? 0 : 1)
    } catch { usageFailure(error) }
case "connections":
    do {
        let o = try ConnectionsOptions.parse(arguments.dropFirst())
        let secret = try o.common.secret()
        try RunGuards.reserveFiles(for: o.connections)
        RunGuards.armBackstop(seconds: o.common.timeout + o.hold + 30)
        exit(ConnectionsScenario(options: o, secret: secret).run() ? 0 : 1)
    } catch { usageFailure(error) }
case "fanout":
    do {
        let o = try FanoutOptions.parse(arguments.dropFirst())
        let secret = try o.common.secret()
        try RunGuards.reserveFiles(for: o.subscribers + o.publishers)
        RunGuards.armBackstop(seconds: o.common.timeout + o.duration + o.drain + 30)
        exit(FanoutScenario(options: o, secret: secret).run() ? 0 : 1)
    } catch { usageFailure(error) }
case "echo":
    do {
        let o = try EchoOptions.parse(arguments.dropFirst())
        try RunGuards.reserveFiles(for: o.connections)
        RunGuards.armBackstop(seconds: o.common.timeout + o.duration + o.drain + 30)
        exit(EchoScenario(options: o).run() ? 0 : 1)
    } catch { usageFailure(error) }
case "broadcast":
    do {
        let o = try BroadcastOptions.parse(arguments.dropFirst())
        let secret = try o.common.secret()
        let key = try o.common.bridgeSecret()
        try RunGuards.reserveFiles(for: o.online)
        RunGuards.armBackstop(seconds: o.common.timeout + Double(o.rounds) * (o.common.timeout + o.pause) + 30)
        exit(BroadcastScenario(options: o, secret: secret, bridgeKey: key).run() ? 0 : 1)
    } catch { usageFailure(error) }
case "store":
    do {
        let o = try StoreOptions.parse(arguments.dropFirst())
        RunGuards.armBackstop(seconds: o.duration + 60) // sending, then at most 30 s for what is in flight
        exit(StoreScenario(o: o).run() ? 0 : 1)
    } catch { usageFailure(error) }
default:
    break
}

// chat
let options: ChatOptions
let secret: String
do {
    options = try ChatOptions.parse(arguments.dropFirst())
    secret = try Tokens.secret(options)
    try RunGuards.reserveFiles(for: 2 * options.conversations)
} catch {
    usageFailure(error)
}

RunGuards.armBackstop(seconds: options.setupTimeout + options.duration + options.drain + 15)

let cpuBefore = CPUTime.used()
let stats = ChatScenario(options: options, secret: secret).run()
ChatReport(o: options, s: stats, cpuSeconds: CPUTime.used() - cpuBefore).printAll()
exit(stats.passed ? 0 : 1)
