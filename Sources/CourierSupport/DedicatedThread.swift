import Glibc

/// Starts a named OS thread running `body`: for event loops that block in C
/// (curl_multi_poll) and so must stay off Swift's cooperative thread pool.
/// The name (at most 15 bytes are kept) shows in `top -H`, gdb and
/// `/proc/PID/task/*/comm`.
public func startDedicatedThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) {
            self.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)
            self.body = body
        }
    }
    let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            nameThisThread(box.name)
            box.body()
            return nil
        }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(thread)
}

/// pthread_setname_np needs _GNU_SOURCE, which Glibc's module does not define, and
/// prctl is variadic: the thread's name goes through procfs instead (Linux 3.17+).
private func nameThisThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    _ = name.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}
