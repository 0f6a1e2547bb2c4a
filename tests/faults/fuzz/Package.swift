// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets (tests/faults/run, scenario 5): FuzzPayload, courier's
// byte-preserving payload reader (SidekiqModel), FuzzAnswer, its reading
// of executor answers (ExecutorProtocol's OutcomeClassifier), and
// FuzzHTTPRequest, the ops server's request parser (MiniHTTP's
// HTTPRequestParser). Every directory under Sources/ but the Fuzz* ones is
// a symbolic link to the main package's target of that name, so the very
// files courier ships are fuzzed,
// without a library product in the main Package.swift and without its
// swift-log dependency (nothing to resolve over the network). Build:
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address --scratch-path ../../../.build-fuzz
// Run: ../../../.build-fuzz/debug/FuzzPayload -dict=json.dict NEW_DIR corpus/payload
//      (FuzzAnswer with corpus/answer; FuzzHTTPRequest -dict=http.dict with
//      corpus/http); one input: FuzzAnswer repro/FILE
let package = Package(
    name: "CourierFuzz",
    targets: [
        .systemLibrary(name: "CZlib"),
        .target(name: "SidekiqModel", dependencies: ["CZlib"]),
        .target(name: "ExecutorProtocol", dependencies: ["SidekiqModel"]),
        .target(name: "CourierSupport"),
        .target(name: "MiniHTTP", dependencies: ["CourierSupport"]),
        // -parse-as-library: each defines <Target>_main, which hands over to libFuzzer's driver.
        .executableTarget(name: "FuzzPayload", dependencies: ["SidekiqModel"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzAnswer", dependencies: ["ExecutorProtocol", "SidekiqModel"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzHTTPRequest", dependencies: ["MiniHTTP"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    swiftLanguageModes: [.v6]
)
