import CourierSupport
import Glibc

/// Where log lines go: a file descriptor, written in batches by a thread of
/// its own. A busy courier logs a line per job, and one write(2) per line cost
/// more than the job's own bookkeeping. Lines at `info` and below wait up to
/// 20 ms; anything more important wakes the writer at once, and it writes
/// everything queued before it too, so the order of lines is always kept.
/// Loggers never wait for the write itself: a stalled stdout (a full pipe)
/// must not stop the dispatcher. While it stalls, lines queue up to 4 MiB;
/// beyond that they are dropped and counted in a line of their own.
public final class LogSink: @unchecked Sendable {
    public static let standardOutput = LogSink(fd: 1)

    private let fd: Int32
    // Allocated, not stored properties: pthread objects must not move, and `&property` gives no stable address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)  // guards the fields below
    private let hasWork = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let writing = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)  // one writer at a time, in order
    private var buffer: [UInt8] = []
    private var urgent = false
    private var dropped = 0
    private var flusherRunning = false
    private static let window = 20  // ms a buffered line may wait
    private static let highWater = 64 * 1024
    private static let limit = 4 * 1024 * 1024

    init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(hasWork, nil)
        pthread_mutex_init(writing, nil)
        buffer.reserveCapacity(Self.highWater)
    }

    deinit {
        // Only a sink whose writer never started can go away (the writer holds it).
        pthread_cond_destroy(hasWork)
        pthread_mutex_destroy(mutex)
        pthread_mutex_destroy(writing)
        hasWork.deallocate()
        mutex.deallocate()
        writing.deallocate()
    }

    /// Queues one line (it must end in a newline); `urgent` has it written now, with all before it.
    func write(_ line: UnsafeRawBufferPointer, urgent isUrgent: Bool) {
        pthread_mutex_lock(mutex)
        let wasEmpty = buffer.isEmpty
        if buffer.count + line.count <= Self.limit { buffer.append(contentsOf: line) } else { dropped += 1 }
        if isUrgent { urgent = true }
        if !flusherRunning {
            flusherRunning = true
            startDedicatedThread(name: "courier-log") { [self] in writerLoop() }
        }
        // Wake the writer only when it needs to act: no wake-up per line in a busy second.
        if wasEmpty || isUrgent || buffer.count >= Self.highWater { pthread_cond_signal(hasWork) }
        pthread_mutex_unlock(mutex)
    }

    /// Writes whatever waits, on the calling thread (at exit).
    public func flush() {
        pthread_mutex_lock(writing)
        writeOut(take())
        pthread_mutex_unlock(writing)
    }

    private func writerLoop() {
        while true {
            pthread_mutex_lock(mutex)
            while buffer.isEmpty && dropped == 0 { pthread_cond_wait(hasWork, mutex) }
            if !urgent {
                // Gather what else comes within the window, unless something important arrives.
                var deadline = timespec()
                clock_gettime(CLOCK_REALTIME, &deadline)
                deadline.tv_nsec += Self.window * 1_000_000
                if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
                while !urgent && buffer.count < Self.highWater {
                    if pthread_cond_timedwait(hasWork, mutex, &deadline) == ETIMEDOUT { break }
                }
            }
            pthread_mutex_unlock(mutex)
            flush()
        }
    }

    /// Takes the queued lines (and a note of dropped ones).
    private func take() -> [UInt8] {
        pthread_mutex_lock(mutex)
        var chunk = buffer
        buffer.removeAll(keepingCapacity: true)
        if dropped > 0 {
            chunk += Array("courier: \(dropped) log lines dropped: stdout did not keep up\n".utf8)
            dropped = 0
        }
        urgent = false
        pthread_mutex_unlock(mutex)
        return chunk
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
