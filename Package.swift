// swift-tools-version:6.0
import PackageDescription

// Courier: a Swift dispatcher that runs Sidekiq jobs through an HTTP executor.
// Modules point inward: C shims → RedisClient / ExecutorClient / SidekiqModel
// → CourierCore (the dispatcher, knows only protocols) → the `courier` executable.
let package = Package(
    name: "Courier",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "courier", targets: ["courier"]),
        .executable(name: "courier-test-executor", targets: ["courier-test-executor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libcurl's setopt/getinfo are variadic, which Swift cannot call: typed C wrappers.
        .target(name: "CurlShim", dependencies: ["CCurl"]),

        .target(name: "CourierSupport"),
        .target(name: "RedisClient", dependencies: ["CHiredis", "CourierSupport", .product(name: "Logging", package: "swift-log")]),
        .target(name: "SidekiqModel", dependencies: ["CZlib"]),
        .target(name: "ExecutorClient", dependencies: ["CCurl", "CurlShim", "CCrypto", "SidekiqModel", "CourierSupport"]),
        .target(name: "MiniHTTP", dependencies: ["CourierSupport"]),
        .target(name: "CourierCore", dependencies: ["RedisClient", "SidekiqModel", "ExecutorClient", "MiniHTTP",
                                                    .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "courier", dependencies: ["CourierCore", "CourierSupport",
                                                          .product(name: "Logging", package: "swift-log")]),
        // A small recording HTTP executor for tests and benchmarks (not shipped in images).
        .executableTarget(name: "courier-test-executor", dependencies: ["MiniHTTP", "SidekiqModel", "ExecutorClient"]),
        .testTarget(name: "CourierTests", dependencies: ["CourierCore", "RedisClient", "SidekiqModel",
                                                         "ExecutorClient", "MiniHTTP",
                                                         .product(name: "Logging", package: "swift-log")],
                    exclude: ["Ruby"]),
    ],
    swiftLanguageModes: [.v6]
)
