import CourierSupport
import Glibc

/// Where log lines go: a file descriptor, written in batches. A busy courier
/// logs a line per job, and one write(2) per line cost more than the job's
/// own bookkeeping; lines at `info` and below wait up to 20 ms in a buffer,
/// anything more important is written at once together with what waits
/// before it, so the order of lines is always kept.
public final class LogSink: @unchecked Sendable {
    public static let standardOutput = LogSink(fd: 1)

    private let fd: Int32
    // Allocated, not stored properties: pthread objects must not move, and `&property` gives no stable address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let hasWork = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var buffer: [UInt8] = []  // guarded by mutex
    private var flusherRunning = false  // guarded by mutex
    private static let window: UInt32 = 20_000  // µs a buffered line may wait
    private static let highWater = 64 * 1024

    init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(hasWork, nil)
        buffer.reserveCapacity(Self.highWater)
    }

    deinit {
        // Only a sink whose flusher never started can go away (the flusher holds it).
        pthread_cond_destroy(hasWork)
        pthread_mutex_destroy(mutex)
        hasWork.deallocate()
        mutex.deallocate()
    }

    /// Queues one line (it must end in a newline); `urgent` writes it, and everything before it, now.
    func write(_ line: UnsafeRawBufferPointer, urgent: Bool) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        buffer.append(contentsOf: line)
        if urgent || buffer.count >= Self.highWater {
            drainLocked()
            return
        }
        if !flusherRunning {
            flusherRunning = true
            startDedicatedThread(name: "courier-log") { [self] in flushLoop() }
        }
        pthread_cond_signal(hasWork)
    }

    /// Writes whatever waits (at exit).
    public func flush() {
        pthread_mutex_lock(mutex)
        drainLocked()
        pthread_mutex_unlock(mutex)
    }

    private func flushLoop() {
        while true {
            pthread_mutex_lock(mutex)
            while buffer.isEmpty { pthread_cond_wait(hasWork, mutex) }
            pthread_mutex_unlock(mutex)
            usleep(Self.window)  // gather what else comes in this window
            flush()
        }
    }

    /// Writes the buffer out; called with the mutex held, so lines never interleave or reorder.
    private func drainLocked() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // a closed or broken stdout: logging must not stop the work
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
