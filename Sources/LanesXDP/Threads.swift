import CLanes
import Glibc

/// A thread pinned to one core, started with a closure (set-up code: the one
/// allocation and retain happen here, never on the lane's path). The start waits
/// until the thread is on its core: a pin the kernel refuses is an error here, and
/// the body never runs elsewhere.
public final class PinnedThread {
    final class Box {
        let body: () -> Void
        let core: Int
        /// Written by the thread before it posts `pinned`; read by init after its wait.
        var pinError: Int32 = 0
        let pinned = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        init(core: Int, body: @escaping () -> Void) {
            self.core = core; self.body = body
            sem_init(pinned, 0, 0)
        }
        deinit { sem_destroy(pinned); pinned.deallocate() }
    }

    let tid: pthread_t

    public init(core: Int, name: String, _ body: @escaping () -> Void) throws(LanesError) {
        let box = Box(core: core, body: body)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            if box.core >= 0 { box.pinError = pinCurrentThread(to: box.core) }
            let failed = box.pinError != 0
            sem_post(box.pinned)
            if failed { return nil }
            // 1 ns timer slack (default 50 us): a pacing lane's usleep(10) wakes near
            // 10 us, so timed sends (gen --rate, replay's schedule) keep their times.
            _ = lanes_set_timer_slack(1)
            box.body()
            return nil
        }, Unmanaged.passRetained(box).toOpaque())
        guard r == 0 else { throw LanesError.system("start thread \(name)", errno: r) }
        while sem_wait(box.pinned) != 0 && errno == EINTR {}
        if box.pinError != 0 {
            pthread_join(t, nil)
            throw LanesError.system("pin thread \(name) to core \(core)", errno: box.pinError)
        }
        tid = t
        _ = name.withCString { pthread_setname_np(t, $0) }
    }

    public func join() { pthread_join(tid, nil) }
}

/// Signals the engine waits for on the main thread (blocked in every other
/// thread): SIGINT, SIGTERM, and SIGHUP (a terminal or SSH session gone), each a
/// clean stop with its report.
public enum StopSignals {
    static let set: sigset_t = {
        var s = sigset_t()
        sigemptyset(&s)
        sigaddset(&s, SIGINT)
        sigaddset(&s, SIGTERM)
        sigaddset(&s, SIGHUP)
        return s
    }()

    /// Blocks SIGINT/SIGTERM in the calling thread; threads started after inherit it.
    public static func block() {
        var s = set
        pthread_sigmask(SIG_BLOCK, &s, nil)
    }

    /// Waits up to `seconds` for SIGINT/SIGTERM/SIGHUP; returns the signal or 0.
    public static func wait(seconds: Double) -> Int32 {
        var s = set
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        let r = sigtimedwait(&s, nil, &ts)
        return r > 0 ? r : 0
    }
}

/// CPU seconds (user + system) of every thread of this process so far.
public func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO: no system call).
@inlinable @inline(__always)
public func monotonicNanos() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
}

/// A flag one thread raises and others poll (relaxed: it only ends loops), in
/// its own allocation so pinned threads can hold it past the caller's frame.
public final class StopFlag: @unchecked Sendable {
    let word = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    public init() { word.initialize(to: 0) }
    deinit { word.deallocate() }
    public func raise() { word.storeRelaxed(1) }
    public var isRaised: Bool { word.loadRelaxed() != 0 }
}
