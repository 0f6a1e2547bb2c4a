import CCurl
import CurlShim
import Glibc
import CourierSupport
import ExecutorProtocol
import SidekiqModel
import Synchronization

/// Settings for the HTTP executor client.
public struct HTTPExecutorConfiguration: Sendable {
    /// Base URL of the executor, e.g. `http://127.0.0.1:8088`.
    public var baseURL: String
    /// Shared secret for the request signature; nil sends no signature (development executors).
    public var secret: [UInt8]?
    /// How long a TCP connect may take before the executor counts as unavailable.
    public var connectTimeout: Duration
    /// How long one job may run before it counts as timed out.
    public var jobTimeout: Duration
    /// Most connections kept open to the executor (normally the concurrency).
    public var maxConnections: Int
    /// Largest `/v1/jobs/batch` body courier sends: jobs fetched together are
    /// split into several requests above it (half the sidecar's default
    /// `--max-batch-body`, leaving room for the escaping of each payload).
    public var maxBatchBytes: Int

    public init(
        baseURL: String, secret: [UInt8]? = nil, connectTimeout: Duration = .seconds(2),
        jobTimeout: Duration = .seconds(600), maxConnections: Int = 10, maxBatchBytes: Int = 8 << 20
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.secret = secret
        self.connectTimeout = connectTimeout
        self.jobTimeout = jobTimeout
        self.maxConnections = maxConnections
        self.maxBatchBytes = maxBatchBytes
    }
}

/// POSTs jobs to the executor through one libcurl multi handle driven by a
/// dedicated thread: many transfers at once, keep-alive connections reused
/// across jobs, no blocking call on the cooperative pool. Completions are
/// reported through the closure given with each job, on that thread, exactly
/// once: `shutdown` completes whatever is still running or queued (see there).
public final class HTTPExecutor: Sendable {
    public typealias Completion = @Sendable (HTTPResult) -> Void

    let configuration: HTTPExecutorConfiguration
    private let signer: RequestSigner?
    private let inbox = Mutex<Inbox>(Inbox())
    /// A pipe that wakes the loop out of curl_multi_poll when work arrives.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    /// A wake byte is in the pipe and the loop has not drained it yet: later submits need not write another.
    private let wakePending = Atomic<Bool>(false)

    private struct Inbox: ~Copyable {
        /// Each with the line reader of a streamed answer (nil: the body is read whole).
        var requests: [(ExecutionRequest, Completion, StreamLines?)] = []
        /// Set by `shutdown`: no request is accepted any more.
        var stopping = false
        /// The loop has ended: every completion ran and every curl handle is freed.
        var finished = false
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// The transport error of a request `shutdown` ended (`sent`: whether it had left).
    /// The dispatcher maps it to "executor unavailable": the job goes back to its queue.
    public static func cancelledAtShutdown(sent: Bool) -> HTTPResult {
        .transportError(reason: "cancelled at shutdown", sent: sent, timedOut: false)
    }

    public init(configuration: HTTPExecutorConfiguration) {
        self.configuration = configuration
        self.signer = configuration.secret.map(RequestSigner.init(secret:))
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe failed: \(errno)")
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        self.wakeFD = fds[0]
        self.wakeWriteFD = fds[1]
        CurlGlobal.initialise()
        // The thread holds `self` until its loop ends, so `deinit` (and the closing of the
        // pipe) cannot come while a late `wake()` may still write to it.
        startDedicatedThread(name: "courier-http") { [self] in self.eventLoop() }
    }

    deinit {
        close(wakeFD)
        close(wakeWriteFD)
    }

    /// Queues one POST of a single job; `completion` runs on the executor thread when it ends.
    public func submit(_ request: ExecutionRequest, completion: @escaping @Sendable (ExecutionOutcome) -> Void) {
        let timeout = request.timeout ?? configuration.jobTimeout
        post(request) { result in completion(OutcomeClassifier.outcome(of: result, jobTimeout: timeout)) }
    }

    /// POSTs several jobs in `/v1/jobs/batch` requests; `completion` gets one
    /// outcome per job, in order. Jobs that together exceed `maxBatchBytes` go
    /// in several requests, and a job alone in its group goes to `/v1/jobs`, so
    /// a body the executor refuses as too large is refused for that job only
    /// (dead with the reason), never for the whole batch (which would look like
    /// an unavailable executor and requeue them all, again and again).
    public func submitBatch(_ requests: [ExecutionRequest], completion: @escaping @Sendable ([ExecutionOutcome]) -> Void) {
        let groups = Self.batchGroups(sizes: requests.map(\.body.count), limit: configuration.maxBatchBytes)
        guard groups.count > 1 else { return postBatch(requests, completion: completion) }
        let collector = BatchCollector(count: requests.count, parts: groups.count, completion: completion)
        for range in groups {
            let part = Array(requests[range])
            if part.count == 1 {
                submit(part[0]) { collector.deliver(at: range.lowerBound, [$0]) }
            } else {
                postBatch(part) { collector.deliver(at: range.lowerBound, $0) }
            }
        }
    }

    /// Consecutive groups of jobs whose bodies add up to at most `limit` bytes
    /// (a job larger than that is a group of its own).
    public static func batchGroups(sizes: [Int], limit: Int) -> [Range<Int>] {
        var groups: [Range<Int>] = []
        var start = 0, total = 0
        for (i, size) in sizes.enumerated() {
            if i > start && total + size > limit {
                groups.append(start..<i)
                start = i
                total = 0
            }
            total += size
        }
        if start < sizes.count { groups.append(start..<sizes.count) }
        return groups
    }

    private func postBatch(_ requests: [ExecutionRequest], completion: @escaping @Sendable ([ExecutionOutcome]) -> Void) {
        let body = StreamProtocol.body(requests)  // the same envelope as a stream's
        let timeout = configuration.jobTimeout * requests.count
        let batch = ExecutionRequest(
            path: "/v1/jobs/batch", body: body, jid: requests.map(\.jid).joined(separator: ","),
            queue: requests[0].queue, attempt: 1, timeout: timeout)
        let count = requests.count
        post(batch) { result in completion(OutcomeClassifier.batchOutcomes(of: result, count: count, jobTimeout: timeout)) }
    }

    /// Gathers the outcomes of a batch sent in several parts, in job order.
    private final class BatchCollector: Sendable {
        private let state: Mutex<(outcomes: [ExecutionOutcome?], pending: Int)>
        private let completion: @Sendable ([ExecutionOutcome]) -> Void

        init(count: Int, parts: Int, completion: @escaping @Sendable ([ExecutionOutcome]) -> Void) {
            state = Mutex((Array(repeating: nil, count: count), parts))
            self.completion = completion
        }

        func deliver(at offset: Int, _ outcomes: [ExecutionOutcome]) {
            let done: [ExecutionOutcome]? = state.withLock { s in
                for (i, outcome) in outcomes.enumerated() { s.outcomes[offset + i] = outcome }
                s.pending -= 1
                return s.pending == 0 ? s.outcomes.map { $0! } : nil
            }
            if let done { completion(done) }
        }
    }

    /// Queues one GET (the health endpoint); `completion` runs on the executor thread when it ends.
    public func get(_ path: String, timeout: Duration, completion: @escaping Completion) {
        var request = ExecutionRequest(path: path, body: [], jid: "", queue: "", attempt: 0, timeout: timeout)
        request.method = .get
        post(request, completion: completion)
    }

    /// Queues one request (a POST unless `request.method` says otherwise); `completion` runs on the executor thread when it ends.
    public func post(_ request: ExecutionRequest, completion: @escaping Completion) {
        post(request, lines: nil, completion: completion)
    }

    /// As `post`; with `lines`, a `200` answer's body goes to it as it arrives instead of into the result.
    func post(_ request: ExecutionRequest, lines: StreamLines?, completion: @escaping Completion) {
        let accepted = inbox.withLock { inbox -> Bool in
            guard !inbox.stopping else { return false }
            inbox.requests.append((request, completion, lines))
            return true
        }
        guard accepted else {
            completion(Self.cancelledAtShutdown(sent: false))
            return
        }
        wake()
    }

    /// Stops the loop and returns once it has ended. Every transfer still running
    /// and every request queued but not started completes, once, with
    /// `cancelledAtShutdown` (`sent` says whether the request had left); every curl
    /// handle is freed and the thread exits. A request made afterwards completes at
    /// once the same way. Safe to call more than once.
    public func shutdown() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let finished = inbox.withLock { inbox -> Bool in
                inbox.stopping = true
                if !inbox.finished { inbox.shutdownWaiters.append(waiter) }
                return inbox.finished
            }
            if finished { waiter.resume() } else { wake() }
        }
    }

    private func wake() {
        // One write per loop turn, not per job: the loop clears the flag before it takes the inbox.
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)  // a full pipe already means "wake up"
    }

    // MARK: - The event loop (runs on its own thread, owns every curl handle)

    private func eventLoop() {
        let multi = curl_multi_init()!
        _ = courier_multi_set_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnections)
        _ = courier_multi_set_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxConnections)
        var idleHandles: [UnsafeMutableRawPointer] = []
        /// Easy handles added to `multi`, each holding its Transfer in PRIVATE.
        var active = Set<UnsafeMutableRawPointer>()
        while true {
            wakePending.store(false, ordering: .sequentiallyConsistent)
            let (requests, stopping) = inbox.withLock { inbox in
                let taken = inbox.requests
                inbox.requests.removeAll(keepingCapacity: true)
                return (taken, inbox.stopping)
            }
            if stopping {
                // Nothing is accepted any more (`stopping` was read under the same lock as the
                // last requests): end every transfer that will not finish, then free every handle.
                for easy in active {
                    curl_multi_remove_handle(multi, easy)
                    Transfer.take(from: easy)?.cancel(easy: easy)
                    idleHandles.append(easy)
                }
                active.removeAll()
                for (_, completion, _) in requests { completion(Self.cancelledAtShutdown(sent: false)) }
                break
            }
            for (request, completion, lines) in requests {
                let easy = idleHandles.popLast() ?? makeEasyHandle()
                let transfer = Transfer(
                    request: request, completion: completion, signer: signer, baseURL: configuration.baseURL,
                    timeout: configuration.jobTimeout)
                transfer.lines = lines
                transfer.attach(to: easy)
                curl_multi_add_handle(multi, easy)
                active.insert(easy)
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let code = message.pointee.data.result
                curl_multi_remove_handle(multi, easy)
                active.remove(easy)
                Transfer.take(from: easy)?.finish(easy: easy, code: code)
                idleHandles.append(easy)
            }
            var waitFD = curl_waitfd(fd: wakeFD, events: Int16(CURL_WAIT_POLLIN), revents: 0)
            curl_multi_poll(multi, &waitFD, 1, active.isEmpty ? 1000 : 100, nil)
            if waitFD.revents != 0 {
                var drain = [UInt8](repeating: 0, count: 256)
                while read(wakeFD, &drain, drain.count) == drain.count {}  // a short read emptied it
            }
        }
        for handle in idleHandles { curl_easy_cleanup(handle) }
        curl_multi_cleanup(multi)
        let waiters = inbox.withLock { inbox in
            inbox.finished = true
            return inbox.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func makeEasyHandle() -> UnsafeMutableRawPointer {
        let easy = curl_easy_init()!
        _ = courier_easy_set_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = courier_easy_set_long(easy, CURLOPT_POST, 1)
        _ = courier_easy_set_long(easy, CURLOPT_TCP_NODELAY, 1)
        // Answers are small JSON: a 4 KiB receive buffer per connection instead of 16 (larger ones arrive in more reads).
        _ = courier_easy_set_long(easy, CURLOPT_BUFFERSIZE, 4096)
        _ = courier_easy_set_long(easy, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.milliseconds)
        _ = courier_easy_set_long(easy, CURLOPT_TIMEOUT_MS, configuration.jobTimeout.milliseconds)
        _ = courier_easy_set_write_callback(easy) { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
            if let lines = transfer.lines, transfer.status == 200 {
                lines.feed(bytes)  // a streamed answer: each line is handled as it arrives
            } else {
                transfer.response.append(contentsOf: bytes)
            }
            return size * count
        }
        _ = courier_easy_set_header_callback(easy) { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            transfer.header(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        return easy
    }
}

/// One in-flight POST; retained by curl's PRIVATE pointer until it finishes.
private final class Transfer {
    let request: ExecutionRequest
    let completion: HTTPExecutor.Completion
    let url: String
    let timeout: Duration
    var response: [UInt8] = []
    var retryAfter: String?
    /// The status of the answer's status line (0 until it arrived).
    var status = 0
    /// Reads a streamed answer's lines (set for `/v1/jobs/stream`).
    var lines: StreamLines?
    private var headers: UnsafeMutablePointer<curl_slist>?

    init(request: ExecutionRequest, completion: @escaping HTTPExecutor.Completion, signer: RequestSigner?, baseURL: String, timeout: Duration) {
        self.request = request
        self.timeout = request.timeout ?? timeout
        self.completion = completion
        self.url = baseURL + request.path
        var list: UnsafeMutablePointer<curl_slist>? = nil
        list = curl_slist_append(list, "Content-Type: application/json")
        list = curl_slist_append(list, "Expect:")  // no 100-continue round trip for larger bodies
        if request.method == .post {
            if let signer {
                list = curl_slist_append(list, "Courier-Signature: " + signer.headerValue(body: request.body, timestamp: time(nil)))
            }
            list = curl_slist_append(list, "Courier-Jid: " + request.jid.headerSafe)
            list = curl_slist_append(list, "Courier-Queue: " + request.queue.headerSafe)
            list = curl_slist_append(list, "Courier-Attempt: \(request.attempt)")
            // Optional (protocol.md): set only on single jobs; batch and stream entries carry them as fields.
            if let tenant = request.tenant { list = curl_slist_append(list, "Courier-Tenant: " + tenant.headerSafe) }
            if let traceparent = request.traceparent { list = curl_slist_append(list, "traceparent: " + traceparent) }
        }
        headers = list
    }

    deinit { curl_slist_free_all(headers) }

    /// The transfer attached to `easy`, with the retain `attach` gave it (nil: none attached).
    static func take(from easy: UnsafeMutableRawPointer) -> Transfer? {
        var privatePointer: UnsafeMutableRawPointer? = nil
        _ = courier_easy_get_pointer(easy, CURLINFO_PRIVATE, &privatePointer)
        return privatePointer.map { Unmanaged<Transfer>.fromOpaque($0).takeRetainedValue() }
    }

    func attach(to easy: UnsafeMutableRawPointer) {
        let me = Unmanaged.passRetained(self).toOpaque()
        _ = url.withCString { courier_easy_set_pointer(easy, CURLOPT_URL, $0) }  // curl copies strings
        _ = courier_easy_set_pointer(easy, CURLOPT_HTTPHEADER, headers)
        if request.method == .get {
            _ = courier_easy_set_long(easy, CURLOPT_HTTPGET, 1)  // handles are reused: the next POST sets POST again
        } else {
            _ = courier_easy_set_long(easy, CURLOPT_POST, 1)
            _ = courier_easy_set_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            // COPYPOSTFIELDS: curl keeps its own copy, so the Swift array need not be pinned.
            _ = request.body.withUnsafeBufferPointer { courier_easy_set_pointer(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) }
        }
        _ = courier_easy_set_pointer(easy, CURLOPT_WRITEDATA, me)
        _ = courier_easy_set_pointer(easy, CURLOPT_HEADERDATA, me)
        _ = courier_easy_set_pointer(easy, CURLOPT_PRIVATE, me)
        _ = courier_easy_set_long(easy, CURLOPT_TIMEOUT_MS, timeout.milliseconds)
    }

    func header(_ line: UnsafeRawBufferPointer) {
        // The status line ("HTTP/1.1 200 OK") decides whether a stream's body is read as lines.
        if line.count >= 12, line.starts(with: "HTTP/".utf8) {
            let digits = line.dropFirst(9).prefix(3)
            status = Int(String(decoding: digits, as: UTF8.self)) ?? 0
            return
        }
        // Otherwise only Retry-After matters; header names are case-insensitive.
        guard line.count > 12 else { return }
        let text = String(decoding: line, as: UTF8.self)
        if text.lowercased().hasPrefix("retry-after:") {
            retryAfter = String(text.dropFirst(12)).trimmingCharacters()
        }
    }

    /// Curl ended the transfer: report its answer (or error).
    func finish(easy: UnsafeMutableRawPointer, code: CURLcode) {
        let result = result(easy: easy, code: code)
        detach(from: easy)
        completion(result)
    }

    /// Shutdown ends the transfer unfinished (already removed from the multi handle).
    func cancel(easy: UnsafeMutableRawPointer) {
        // CURLINFO_REQUEST_SIZE counts the request bytes sent in this transfer (reset when it starts).
        var requestSize = 0
        _ = courier_easy_get_long(easy, CURLINFO_REQUEST_SIZE, &requestSize)
        detach(from: easy)
        completion(HTTPExecutor.cancelledAtShutdown(sent: requestSize > 0))
    }

    /// The transfer's own retain (PRIVATE) was taken by `take(from:)`; drop curl's other references to it.
    private func detach(from easy: UnsafeMutableRawPointer) {
        _ = courier_easy_set_pointer(easy, CURLOPT_WRITEDATA, nil)
        _ = courier_easy_set_pointer(easy, CURLOPT_HEADERDATA, nil)
        _ = courier_easy_set_pointer(easy, CURLOPT_PRIVATE, nil)
        _ = courier_easy_set_pointer(easy, CURLOPT_HTTPHEADER, nil)
    }

    private func result(easy: UnsafeMutableRawPointer, code: CURLcode) -> HTTPResult {
        if code == CURLE_OK {
            var status = 0
            _ = courier_easy_get_long(easy, CURLINFO_RESPONSE_CODE, &status)
            return .response(status: status, body: response, retryAfter: retryAfter)
        }
        var requestSize = 0
        _ = courier_easy_get_long(easy, CURLINFO_REQUEST_SIZE, &requestSize)
        return .transportError(
            reason: String(cString: curl_easy_strerror(code)), sent: requestSize > 0,
            timedOut: code == CURLE_OPERATION_TIMEDOUT)
    }
}

enum CurlGlobal {
    private static let once: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)); return ()
    }()
    static func initialise() { _ = once }
}

extension Duration {
    var milliseconds: Int {
        let (s, atto) = components
        return Int(s) * 1000 + Int(atto / 1_000_000_000_000_000)
    }
}

extension String {
    /// Strips CR/LF so a value cannot inject extra headers.
    var headerSafe: String {
        // Fast path: jids and queue names never contain line breaks.
        guard utf8.contains(where: { $0 == 10 || $0 == 13 }) else { return self }
        return String(filter { $0 != "\r" && $0 != "\n" })
    }
}
