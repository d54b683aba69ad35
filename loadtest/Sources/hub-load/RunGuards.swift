import CLinux
import Glibc

// What bounds a run from the outside: enough open files for its connections (checked before
// anything starts), and a backstop alarm that ends the process (exit 3) if a phase still
// hangs although each has its own deadline.
enum RunGuards {
    /// Descriptors kept beside the connections: stdio, epoll, the bridge socket, /proc reads.
    static let spareFiles = 32

    /// Raises the soft open-file limit to the hard one; a usage error when `connections`
    /// sockets would not fit under it.
    static func reserveFiles(for connections: Int) throws(UsageError) {
        let limit = montrose_raise_open_file_limit()
        guard limit >= connections + spareFiles else {
            throw UsageError(message: "\(connections) connections need \(connections + spareFiles) open files, but this process may "
                + "open only \(limit) (the hard limit, `ulimit -Hn`); use at most \(max(0, limit - spareFiles)) connections")
        }
    }

    static func armBackstop(seconds: Double) {
        signal(SIGALRM) { _ in
            let text = "hub-load: backstop alarm fired, exiting\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            _exit(3)
        }
        alarm(UInt32(min(seconds.rounded(.up), Double(UInt32.max / 2))))
    }
}
