import Glibc
@testable import Hub

extension PeerAddress {
    /// The address of `text` (`a.b.c.d:port`, `[v6]:port`) as accept would have reported it,
    /// for tests that name peers; anything else is an address of no family the hub knows.
    init(text: String) {
        var storage = sockaddr_storage()
        if let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) {
            let host = text[..<colon]
            withUnsafeMutablePointer(to: &storage) { s in
                if host.hasPrefix("["), host.hasSuffix("]") {
                    s.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                        if inet_pton(AF_INET6, String(host.dropFirst().dropLast()), &a.pointee.sin6_addr) == 1 {
                            a.pointee.sin6_family = sa_family_t(AF_INET6)
                            a.pointee.sin6_port = port.bigEndian
                        }
                    }
                } else {
                    s.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                        if inet_pton(AF_INET, String(host), &a.pointee.sin_addr) == 1 {
                            a.pointee.sin_family = sa_family_t(AF_INET)
                            a.pointee.sin_port = port.bigEndian
                        }
                    }
                }
            }
        }
        self.init(storage)
    }
}
