// swift-tools-version:6.0
import PackageDescription

// Courier: a Swift dispatcher that runs Sidekiq jobs through an HTTP executor.
// One target per concern, dependencies pointing inward (docs/architecture.md):
//   C shims → SidekiqModel, ExecutorProtocol (values, no I/O)
//   → JobDispatch (the dispatcher: sees a job source, an executor and a clock as protocols)
//   → RedisClient/RedisAdapters (hiredis), ExecutorClient (libcurl), Ops (metrics, logs, ops port), Config
//   → CourierService (composition) → the `courier` executable (command line, signals).
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")

let package = Package(
    name: "Courier",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "courier", targets: ["courier"]),
        .executable(name: "courier-test-executor", targets: ["courier-test-executor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libcurl's setopt/getinfo are variadic, which Swift cannot call: typed C wrappers.
        .target(name: "CurlShim", dependencies: ["CCurl"]),

        .target(name: "CourierSupport"),
        .target(name: "SidekiqModel", dependencies: ["CZlib"]),
        .target(name: "ExecutorProtocol", dependencies: ["SidekiqModel"]),
        .target(name: "JobDispatch", dependencies: ["CourierSupport", "SidekiqModel", "ExecutorProtocol", logging]),
        .target(name: "RedisClient", dependencies: ["CHiredis", "CourierSupport", logging]),
        .target(name: "RedisAdapters", dependencies: ["CourierSupport", "JobDispatch", "RedisClient", "SidekiqModel", logging]),
        .target(name: "ExecutorClient", dependencies: ["CCurl", "CurlShim", "CCrypto", "ExecutorProtocol", "SidekiqModel", "CourierSupport"]),
        .target(name: "MiniHTTP", dependencies: ["CourierSupport"]),
        .target(name: "Ops", dependencies: ["JobDispatch", "MiniHTTP", "SidekiqModel", "CourierSupport", logging,
                                           .product(name: "Prometheus", package: "swift-prometheus")]),
        .target(name: "Config", dependencies: ["CYAML", "JobDispatch", "RedisClient", "ExecutorClient", "SidekiqModel", "Ops", "CourierSupport", logging]),
        // `courier status`: a snapshot of Sidekiq's keys as a value, its rendering, and the reader that fills it.
        .target(name: "Status", dependencies: ["RedisClient", "SidekiqModel"]),
        .target(name: "CourierService", dependencies: ["Config", "JobDispatch", "RedisAdapters", "RedisClient", "ExecutorClient",
                                                       "ExecutorProtocol", "Ops", "SidekiqModel", "CourierSupport", logging]),
        .executableTarget(name: "courier", dependencies: ["CourierService", "Config", "Ops", "RedisClient", "SidekiqModel", "Status",
                                                          "CourierSupport", logging]),
        // A small recording HTTP executor for tests and benchmarks (not shipped in images).
        .executableTarget(name: "courier-test-executor", dependencies: ["MiniHTTP", "SidekiqModel", "ExecutorProtocol", "ExecutorClient"]),
        .testTarget(name: "CourierTests", dependencies: ["CourierService", "Config", "JobDispatch", "RedisAdapters", "Ops",
                                                         "RedisClient", "SidekiqModel", "ExecutorProtocol", "ExecutorClient", "MiniHTTP",
                                                         "Status", logging],
                    exclude: ["Ruby"]),
    ],
    swiftLanguageModes: [.v6]
)
