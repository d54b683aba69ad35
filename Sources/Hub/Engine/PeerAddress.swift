import Glibc

/// A connection's remote address and port, kept as bytes. Its text (`a.b.c.d:port`,
/// `[v6]:port`) is written only when a log line or the console reads it, which is rare next to
/// the connects. A client's name is usually 16–21 bytes (`203.0.113.45:51234`), over the
/// 15 bytes Swift keeps inline, so as a String every idle connection held a heap block of 64 B for
/// it; this holds 19 bytes in the connection itself. Writing the text at accept also cost
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

    var description: String {
        switch family {
        case .ipv4: return Self.ipv4Text(UInt32(truncatingIfNeeded: low), port)
        case .ipv6:
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) {
                $0.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &buf, socklen_t(buf.count)) != nil else { return "?" }
            return "[\(cString(buf))]:\(port)"
        case .unknown: return "?"
        }
    }

    /// `a.b.c.d:port`, as inet_ntop writes the address.
    private static func ipv4Text(_ address: UInt32, _ port: UInt16) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { out in
            var k = 0
            func decimal(_ v: UInt32) {
                if v >= 100 { out[k] = UInt8(ascii: "0") + UInt8(v / 100); k += 1 }
                if v >= 10 { out[k] = UInt8(ascii: "0") + UInt8(v / 10 % 10); k += 1 }
                out[k] = UInt8(ascii: "0") + UInt8(v % 10); k += 1
            }
            decimal(address >> 24); out[k] = UInt8(ascii: "."); k += 1
            decimal(address >> 16 & 0xFF); out[k] = UInt8(ascii: "."); k += 1
            decimal(address >> 8 & 0xFF); out[k] = UInt8(ascii: "."); k += 1
            decimal(address & 0xFF); out[k] = UInt8(ascii: ":"); k += 1
            var digits = 1, p = UInt32(port)
            while p >= 10 { p /= 10; digits += 1 }
            p = UInt32(port)
            for i in stride(from: k + digits - 1, through: k, by: -1) { out[i] = UInt8(ascii: "0") + UInt8(p % 10); p /= 10 }
            return String(decoding: UnsafeBufferPointer(rebasing: out[..<(k + digits)]), as: UTF8.self)
        }
    }
}
