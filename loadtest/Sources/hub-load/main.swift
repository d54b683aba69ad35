import CLinux
import Foundation
import Glibc

// hub-load: a load generator that speaks the Montrose Hub protocol (see loadtest/README.md).
//   hub-load chat --url ws://127.0.0.1:PORT/ws --data DIR [--conversations N] [--duration S] ...
// Exit status: 0 when every check passed, 1 when a check failed or errors occurred, 2 on a
// usage error, 3 when the backstop alarm fired.

montrose_line_buffer_stdout()
signal(SIGPIPE, SIG_IGN)

let arguments = CommandLine.arguments.dropFirst()
guard let scenario = arguments.first, ["chat", "notify"].contains(scenario) else {
    FileHandle.standardError.write(Data("hub-load: the scenario must be `chat` or `notify`\n\(ChatOptions.usage)\n\(NotifyOptions.usage)\n".utf8))
    exit(2)
}

if scenario == "notify" {
    do {
        let o = try NotifyOptions.parse(arguments.dropFirst())
        _ = montrose_raise_open_file_limit()
        alarm(UInt32(4 * o.timeout) + 30) // backstop; every phase has its own bound
        signal(SIGALRM) { _ in _exit(3) }
        exit(NotifyScenario(options: o).run() ? 0 : 1)
    } catch {
        FileHandle.standardError.write(Data("hub-load: \(error.message)\n".utf8))
        exit(2)
    }
}

let options: ChatOptions
let secret: String
do {
    options = try ChatOptions.parse(arguments.dropFirst())
    secret = try Tokens.secret(options)
} catch {
    FileHandle.standardError.write(Data("hub-load: \(error.message)\n".utf8))
    exit(2)
}

let files = montrose_raise_open_file_limit()
guard files > 2 * options.conversations + 32 else {
    FileHandle.standardError.write(Data("hub-load: \(2 * options.conversations) connections need more than the \(files) open files allowed\n".utf8))
    exit(2)
}

// Backstop: every phase has its own deadline; this ends the process if something still hangs.
signal(SIGALRM) { _ in
    let text = "hub-load: backstop alarm fired, exiting\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    _exit(3)
}
alarm(UInt32(options.setupTimeout + options.duration + options.drain) + 15)

let cpuBefore = CPUTime.used()
let stats = ChatScenario(options: options, secret: secret).run()
ChatReport(o: options, s: stats, cpuSeconds: CPUTime.used() - cpuBefore).printAll()
exit(stats.passed ? 0 : 1)
