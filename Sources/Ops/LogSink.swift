import CourierSupport
import Dispatch
import Glibc
import Synchronization

/// Where log lines go: a file descriptor, written in batches by a thread of
/// its own. A busy courier logs a line per job, and one write(2) per line cost
/// more than the job's own bookkeeping. Lines at `info` and below wait up to
/// 20 ms; anything more important wakes the writer at once, and it writes
/// everything queued before it too, so the order of lines is always kept.
/// Loggers never wait for the write itself: a stalled stdout (a full pipe)
/// must not stop the dispatcher. While it stalls, lines queue up to 4 MiB;
/// beyond that they are dropped and counted in a line of their own.
///
/// The writer is a dedicated OS thread, not a task: write(2) to a stalled
/// stdout blocks, and a cooperative thread blocked there would take one of the
/// runtime's few threads from the dispatcher for as long as the stall lasts.
public final class LogSink: Sendable {
    public static let standardOutput = LogSink(fd: 1)

    private struct Queue: ~Copyable {
        var buffer: [UInt8] = []
        var urgent = false
        var dropped = 0
        var writerStarted = false
        /// The writer is waiting (or about to) on `wakeWriter` for a line, an urgent line
        /// or the high-water mark; the logger that clears this signals it, once.
        var writerAsleep = false
    }

    private let fd: Int32
    private let queue: Mutex<Queue>
    /// The writer thread's condition. Signalled only by whoever clears `writerAsleep`,
    /// so it never holds more than one wake-up.
    private let wakeWriter = DispatchSemaphore(value: 0)
    /// One writer at a time, in order: the writer thread, or `flush()` at exit.
    private let writing = Mutex(())
    private static let window = 20  // ms a buffered line may wait
    private static let highWater = 64 * 1024
    private static let limit = 4 * 1024 * 1024

    init(fd: Int32) {
        self.fd = fd
        var queue = Queue()
        queue.buffer.reserveCapacity(Self.highWater)
        self.queue = Mutex(queue)
    }

    /// Queues one line (it must end in a newline); `urgent` has it written now, with all before it.
    func write(_ line: UnsafeRawBufferPointer, urgent isUrgent: Bool) {
        let (start, wake) = queue.withLock { q -> (Bool, Bool) in
            let wasEmpty = q.buffer.isEmpty
            if q.buffer.count + line.count <= Self.limit { q.buffer.append(contentsOf: line) } else { q.dropped += 1 }
            if isUrgent { q.urgent = true }
            let start = !q.writerStarted
            q.writerStarted = true
            // Wake the writer only when it needs to act: no wake-up per line in a busy second.
            guard q.writerAsleep, wasEmpty || isUrgent || q.buffer.count >= Self.highWater else { return (start, false) }
            q.writerAsleep = false
            return (start, true)
        }
        if start { startDedicatedThread(name: "courier-log") { [self] in writerLoop() } }
        if wake { wakeWriter.signal() }
    }

    /// Writes whatever waits, on the calling thread (at exit).
    public func flush() {
        writing.withLock { _ in writeOut(take()) }
    }

    private func writerLoop() {
        while true {
            let idle = queue.withLock { q in
                q.writerAsleep = q.buffer.isEmpty && q.dropped == 0
                return q.writerAsleep
            }
            if idle { wakeWriter.wait() }
            // Gather what else comes within the window, unless something important arrives.
            let deadline = DispatchTime.now() + .milliseconds(Self.window)
            while queue.withLock({ q in
                q.writerAsleep = !q.urgent && q.buffer.count < Self.highWater
                return q.writerAsleep
            }) {
                guard wakeWriter.wait(timeout: deadline) == .timedOut else { continue }
                // A logger that cleared the flag meanwhile signals right after: take that
                // wake-up now, so none is left over for the next wait.
                let signalled = queue.withLock { q in
                    defer { q.writerAsleep = false }
                    return !q.writerAsleep
                }
                if signalled { wakeWriter.wait() }
                break
            }
            flush()
        }
    }

    /// Takes the queued lines (and a note of dropped ones).
    private func take() -> [UInt8] {
        queue.withLock { q in
            var chunk = q.buffer
            q.buffer.removeAll(keepingCapacity: true)
            if q.dropped > 0 {
                chunk += Array("courier: \(q.dropped) log lines dropped: stdout did not keep up\n".utf8)
                q.dropped = 0
            }
            q.urgent = false
            return chunk
        }
    }

    private func writeOut(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // a closed or broken stdout: logging must not stop the work
            offset += n
        }
    }
}
