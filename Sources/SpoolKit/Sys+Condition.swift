#if canImport(Glibc)
import Glibc
#endif

extension Sys {
    /// A mutex and a condition variable whose timed waits run on
    /// CLOCK_MONOTONIC. Written by hand because Foundation's NSCondition
    /// waits until a `Date` (pthread_cond_timedwait on CLOCK_REALTIME): a
    /// wall clock set back an hour during a wait stretches it by an hour,
    /// and swift-synchronization's `Mutex` has no wait at all.
    ///
    /// `@unchecked Sendable`: the pthread objects live at fixed addresses
    /// for the object's life and are what synchronises the threads.
    public final class Condition: @unchecked Sendable {
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

        public init() {
            precondition(pthread_mutex_init(mutex, nil) == 0)
            var attr = pthread_condattr_t()
            pthread_condattr_init(&attr)
            pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
            precondition(pthread_cond_init(cond, &attr) == 0)
            pthread_condattr_destroy(&attr)
        }

        deinit {
            pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
            cond.deallocate(); mutex.deallocate()
        }

        public func lock() { pthread_mutex_lock(mutex) }
        public func unlock() { pthread_mutex_unlock(mutex) }
        public func broadcast() { pthread_cond_broadcast(cond) }
        /// Waits for a broadcast (the lock held).
        public func wait() { pthread_cond_wait(cond, mutex) }

        /// Waits for a broadcast or `seconds` on the monotonic clock (the
        /// lock held); false when the time ran out.
        @discardableResult
        public func wait(seconds: Double) -> Bool {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let clamped = seconds.isNaN ? 0 : max(0, min(seconds, 1e9))
            let whole = Int(clamped)
            var nanos = now.tv_nsec + Int((clamped - Double(whole)) * 1e9)
            var secs = now.tv_sec + whole
            if nanos >= 1_000_000_000 { secs += 1; nanos -= 1_000_000_000 }
            var deadline = timespec(tv_sec: secs, tv_nsec: nanos)
            return pthread_cond_timedwait(cond, mutex, &deadline) == 0
        }
    }
}
