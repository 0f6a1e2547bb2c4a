// ThreadSanitizer and Synchronization.Mutex on Linux (Swift 6.x).
//
// Mutex's fast paths are inlined into our (instrumented) code as atomic
// compare-exchanges, which TSan sees. Under contention it takes the slow paths
// in libswiftSynchronization.so, which is not instrumented and blocks in
// FUTEX_LOCK_PI / FUTEX_UNLOCK_PI, which TSan does not model: a lock handed
// over through the kernel carries no happens-before edge, and every contended
// `withLock` then looks like a data race. Preloaded by scripts/test's `tsan`
// tier, this library wraps the three slow paths and tells TSan what they did:
// acquired (after `_lockSlow`, or a `_tryLockSlow` that succeeded) and
// released (before `_unlockSlow`), on the address of the lock word.
//
// The TSan entry points are weak: a process without TSan (redis-server, ruby,
// the plain courier binaries the tests start) just passes through.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

// Swift methods of `_MutexHandle` take `self` (the lock word's address) in the swiftself
// register, which is what clang calls `swift_context` in the swiftcall convention.
#define SWIFTCALL __attribute__((swiftcall))
#define SELF __attribute__((swift_context))  // LLVM swiftself: r13 on x86_64, x20 on arm64

#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"

typedef SWIFTCALL void (*lock_slow_fn)(uint32_t, void *SELF);
typedef SWIFTCALL bool (*try_lock_slow_fn)(void *SELF);
typedef SWIFTCALL void (*unlock_slow_fn)(void *SELF);

static void *original(const char *name) {
    void *fn = dlsym(RTLD_NEXT, name);
    if (!fn) {
        fprintf(stderr, "mutex_annotations: %s not found\n", name);
        abort();
    }
    return fn;
}

SWIFTCALL void lock_slow(uint32_t self_id, void *SELF handle) __asm__(LOCK_SLOW);
SWIFTCALL void lock_slow(uint32_t self_id, void *SELF handle) {
    static lock_slow_fn next;
    if (!next) next = (lock_slow_fn)original(LOCK_SLOW);
    next(self_id, handle);
    if (__tsan_acquire) __tsan_acquire(handle);
}

SWIFTCALL bool try_lock_slow(void *SELF handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL bool try_lock_slow(void *SELF handle) {
    static try_lock_slow_fn next;
    if (!next) next = (try_lock_slow_fn)original(TRY_LOCK_SLOW);
    bool locked = next(handle);
    if (locked && __tsan_acquire) __tsan_acquire(handle);
    return locked;
}

SWIFTCALL void unlock_slow(void *SELF handle) __asm__(UNLOCK_SLOW);
SWIFTCALL void unlock_slow(void *SELF handle) {
    static unlock_slow_fn next;
    if (!next) next = (unlock_slow_fn)original(UNLOCK_SLOW);
    if (__tsan_release) __tsan_release(handle);
    next(handle);
}
