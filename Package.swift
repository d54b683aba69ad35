// swift-tools-version:6.0
import PackageDescription

// Montrose Hub: no third-party Swift packages. System C libraries come in through
// system-library targets (OpenSSL, zlib, SQLite, libpq) and one small C target for what Swift
// cannot import directly (epoll, eventfd, timerfd and a few socket macros). Core holds the
// utilities every module shares (Log, Locked, the clocks) and depends on nothing of ours.
let package = Package(
    name: "montrose-hub",
    products: [
        .executable(name: "montrose-hub", targets: ["Hub"]),
    ],
    targets: [
        .target(name: "CLinux", path: "Sources/CLinux"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPostgres", path: "Sources/CPostgres", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        .target(name: "Core", dependencies: ["CLinux"], path: "Sources/Core"),
        .target(name: "Protocol", dependencies: ["COpenSSL", "CZlib"], path: "Sources/Protocol"),
        .target(name: "Persistence", dependencies: ["Core", "Protocol", "CSQLite", "CPostgres", "COpenSSL"], path: "Sources/Persistence"),
        .target(name: "Metrics", dependencies: ["Core", "Protocol", "Persistence"], path: "Sources/Metrics"),
        .target(name: "Notifications", dependencies: ["Core", "Protocol", "Persistence", "Metrics", "COpenSSL"], path: "Sources/Notifications"),
        .target(name: "Bridge", dependencies: ["Core", "Protocol", "Persistence", "Metrics", "Notifications"], path: "Sources/Bridge"),
        // The web console's files are embedded in the executable (no files to deploy beside it).
        .executableTarget(name: "Hub", dependencies: ["Core", "Protocol", "Persistence", "Metrics", "Notifications", "Bridge", "CLinux", "COpenSSL"], path: "Sources/Hub",
                          exclude: ["Console/assets/API.md"],
                          resources: [.embedInCode("Console/assets/index.html"), .embedInCode("Console/assets/console.js"),
                                      .embedInCode("Console/assets/console.css"), .embedInCode("Console/assets/hub.js"),
                                      .embedInCode("Console/assets/reports.js"), .embedInCode("Console/assets/messages.js"),
                                      .embedInCode("Console/assets/search.js"), .embedInCode("Console/assets/attach.js"),
                                      .embedInCode("Console/assets/hub.d.ts")],
                          // The engine's per-message state lives in class properties, and a release
                          // build checked every access to them at run time (swift_beginAccess: 3–4 %
                          // of the loop at fan-out and echo rates). Debug builds, where every test
                          // and sanitizer run happens, keep the checks.
                          swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .executableTarget(name: "hub-load", dependencies: ["Protocol", "Persistence", "CLinux"], path: "loadtest/Sources/hub-load"),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol"], path: "Tests/ProtocolTests"),
        .testTarget(name: "PersistenceTests", dependencies: ["Core", "Persistence", "Notifications", "CSQLite"], path: "Tests/PersistenceTests"),
        .testTarget(name: "HubTests", dependencies: ["Core", "Hub", "Bridge", "Metrics", "Notifications", "Protocol", "Persistence", "CLinux"], path: "Tests/HubTests"),
    ]
)
