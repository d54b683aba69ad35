import Glibc

/// A value behind a pthread mutex, with the same `withLock` shape as Synchronization's Mutex.
/// Used instead of it because on Linux that Mutex is a bare futex ThreadSanitizer cannot see:
/// every access it protects would be reported as a race, and real races would drown in them.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The value, read under the lock without writing it back. A closure kept as the whole
    /// value must be read this way: through `withLock { $0 }` it passes an inout of the generic
    /// type, and each pass wraps the kept closure in two more reabstraction thunks that stay, so
    /// every read made it a call deeper (slower each time, and in the end a stack overflow).
    public func load() -> Value {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return value
    }

    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
