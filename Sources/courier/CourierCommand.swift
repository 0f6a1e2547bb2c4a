// The `courier` executable: reads the command line (Config), builds the
// service (CourierService), installs the signal handlers and runs until
// stopped; usage errors exit 64 with the setting named.
import Config
import CourierService
import Dispatch
import Glibc
import CourierSupport
import Logging
import Ops
import RedisClient
import SidekiqModel
import Synchronization

/// `courier`: runs a Rails app's Sidekiq jobs through an HTTP executor.
@main
enum CourierMain {
    static func main() async {
        // A log reader that goes away must not kill courier: writes then fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "cancel" {
            let code = await CancelCommand.run(Array(arguments.dropFirst()))
            exit(code)
        }
        if arguments.first == "status" {
            exit(await StatusCommand.run(Array(arguments.dropFirst())))
        }
        let request: CommandLineRequest
        do {
            request = try FlagParser.parse(arguments, flags: CourierOptions.flags)
        } catch {
            usageFailure(error)
        }
        switch request {
        case .help:
            print(
                FlagParser.help(
                    command: "courier", overview: CourierOptions.overview, discussion: CourierOptions.discussion,
                    flags: CourierOptions.flags), terminator: "")
        case .version:
            print(CourierVersion.version)
        case let .run(parsed):
            do {
                try await CourierCommand(parsed).run()
                LogSink.standardOutput.flush()  // lines other threads logged after run's own flush
            } catch let error as UsageError {
                usageFailure(error)
            } catch {
                // Found after start-up (e.g. Redis too old, the ops port taken): exit 1.
                LogSink.standardOutput.flush()
                standardError("Error: \(error)\n")
                exit(1)
            }
        }
    }

    /// Rejected input: one line naming the setting, the usage line, exit 64 (EX_USAGE).
    static func usageFailure(_ error: UsageError, usage: String = "courier <options>", helpCommand: String = "courier --help") -> Never {
        var text = "Error: \(error.message)\n"
        if let help = error.help { text += "Help:  \(help)\n" }
        text += "Usage: \(usage)\n  See '\(helpCommand)' for more information.\n"
        standardError(text)
        exit(64)
    }

    /// A subcommand's flags (`courier cancel`, `courier status`): nil after `--help` or `--version` was
    /// printed (exit 0); bad usage exits 64 with the subcommand's usage line.
    static func subcommandFlags(
        _ arguments: [String], command: String, flags: [Flag], positionals: Int = 0, overview: String, discussion: String, usage: String
    ) -> ParsedFlags? {
        do {
            switch try FlagParser.parse(arguments, flags: flags, positionals: positionals) {
            case .help:
                print(FlagParser.help(command: command, overview: overview, discussion: discussion, flags: flags, usage: usage), terminator: "")
                return nil
            case .version:
                print(CourierVersion.version)
                return nil
            case let .run(parsed): return parsed
            }
        } catch {
            usageFailure(error, usage: usage, helpCommand: "\(command) --help")
        }
    }

    static func standardError(_ text: String) {
        var bytes = Array(text.utf8)
        _ = write(2, &bytes, bytes.count)
    }
}

struct CourierCommand {
    /// What the command line gave; the environment and the -C file fill the rest.
    let flags: ParsedFlags

    init(_ flags: ParsedFlags) { self.flags = flags }

    func run() async throws {
        // An empty variable counts as unset, as in Sidekiq's own scripts.
        let env = processEnvironment().filter { !$0.value.isEmpty }
        let loaded = try CourierOptions.load(flags: flags, env: env)
        let (configuration, logFormat, level) = (loaded.configuration, loaded.logFormat, loaded.logLevel)
        let logger = Logger(label: "courier") { label in CourierLogHandler(label: label, format: logFormat, level: level) }
        if configuration.executor.secret == nil {
            logger.warning("COURIER_SECRET is not set: requests to the executor are unsigned (a production sidecar refuses them)")
        }
        defer { LogSink.standardOutput.flush() }
        let courier = try Courier(configuration: configuration, logger: logger)
        let signals = SignalHandlers(courier: courier, logger: logger)
        signals.install()
        try await courier.run()
        withExtendedLifetime(signals) {}
    }
}

/// TERM/INT stop, TSTP quiets, TTIN dumps in-flight jobs; a second TERM/INT stops at once.
final class SignalHandlers {
    private let courier: Courier
    private let logger: Logger
    private let sources: [DispatchSourceSignal]

    init(courier: Courier, logger: Logger) {
        self.courier = courier
        self.logger = logger
        var made: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT, SIGTSTP, SIGTTIN] {
            signal(sig, SIG_IGN)
            made.append(DispatchSource.makeSignalSource(signal: sig, queue: .global()))
        }
        sources = made
    }

    func install() {
        let stops = ManagedAtomicCounter()
        for source in sources {
            let sig = Int32(source.handle)
            source.setEventHandler { [courier, logger] in
                switch sig {
                case SIGTSTP:
                    logger.notice("SIGTSTP: quiet")
                    courier.quiet()
                case SIGTTIN:
                    courier.logInFlight()
                default:
                    if stops.increment() == 1 {
                        logger.notice("signal \(sig): stopping")
                        courier.stop()
                    } else {
                        logger.warning("second stop signal: pushing back in-flight jobs now")
                        courier.stop(timeout: .zero)
                    }
                }
            }
            source.resume()
        }
    }
}

final class ManagedAtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
}
