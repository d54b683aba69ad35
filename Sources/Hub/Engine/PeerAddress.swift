import Glibc

/// A connection's remote address and port, kept as bytes. Its text (`a.b.c.d:port`,
/// `[v6]:port`) is written only when a log line reads it, and the console's loopback check
/// reads the bytes. A client's name is usually 16–21 bytes (`203.0.113.45:51234`), over the
/// 15 bytes Swift keeps inline, so as a String every idle connection held a heap block of 64 B
/// for it; this holds 19 bytes in the connection itself. Writing the text at accept also cost
/// three allocations (inet_ntop's buffer, a C-string copy, the interpolation).
struct PeerAddress: Sendable, Equatable, CustomStringConvertible {
    private enum Family: UInt8 { case ipv4, ipv6, unknown }

    /// IPv6: the address's first 8 bytes, as they are in memory; IPv4: 0.
    private let high: UInt64
    /// IPv6: its last 8 bytes; IPv4: the address, in host order.
    private let low: UInt64
    let port: UInt16
    private let family: Family

    init(_ storage: sockaddr_storage) {
        var s = storage
        switch Int32(s.ss_family) {
        case AF_INET:
            let (address, port) = withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    (UInt32(bigEndian: $0.pointee.sin_addr.s_addr), UInt16(bigEndian: $0.pointee.sin_port))
                }
            }
            self = .ipv4(address, port: port)
        case AF_INET6:
            let (address, port) = withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ($0.pointee.sin6_addr, UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            let (high, low) = withUnsafeBytes(of: address) {
                ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            self.init(high: high, low: low, port: port, family: .ipv6)
        default:
            self.init(high: 0, low: 0, port: 0, family: .unknown)
        }
    }

    private init(high: UInt64, low: UInt64, port: UInt16, family: Family) {
        self.high = high
        self.low = low
        self.port = port
        self.family = family
    }

    /// An IPv4 address in host order (`0x7F00_0001` is 127.0.0.1).
    static func ipv4(_ address: UInt32, port: UInt16) -> PeerAddress {
        PeerAddress(high: 0, low: UInt64(address), port: port, family: .ipv4)
    }

    /// On this machine: 127.0.0.0/8, ::1, or an IPv4-mapped loopback (`::ffff:127.x.y.z`).
    /// Read from the bytes the kernel reported, not from their text.
    var isLoopback: Bool {
        switch family {
        case .ipv4: return low >> 24 == 127
        case .ipv6:
            return withUnsafeBytes(of: (high, low)) { b in
                let zeros = { (n: Int) in b[..<n].allSatisfy { $0 == 0 } }
                return (zeros(15) && b[15] == 1) || (zeros(10) && b[10] == 0xFF && b[11] == 0xFF && b[12] == 127)
            }
        case .unknown: return false
        }
    }

    /// As inet_ntop writes the address, then the port: `a.b.c.d:port`, `[v6]:port`; `?` for a
    /// family the hub does not know. Only log lines read it, so it is made the plain way.
    var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch family {
        case .ipv4:
            var address = in_addr(s_addr: UInt32(truncatingIfNeeded: low).bigEndian)
            guard inet_ntop(AF_INET, &address, &buf, socklen_t(buf.count)) != nil else { return "?" }
            return "\(cString(buf)):\(port)"
        case .ipv6:
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) {
                $0.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            guard inet_ntop(AF_INET6, &address, &buf, socklen_t(buf.count)) != nil else { return "?" }
            return "[\(cString(buf))]:\(port)"
        case .unknown: return "?"
        }
    }
}
