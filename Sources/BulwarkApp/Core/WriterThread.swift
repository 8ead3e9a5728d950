import NIOCore
import NIOPosix

/// A thread of its own for the Swift side of the background writers (the tracking journal's flusher): building a
/// batch's statement and reading its rows take milliseconds for 2,000 hits, and on an event loop (Swift's global
/// executor here, see `Entrypoint`) each batch held up every request on that loop for as long.
final class WriterThread: TaskExecutor {
    static let shared = WriterThread()

    private let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()

    private init() {}

    /// The caller runs on this thread.
    var isCurrent: Bool { loop.inEventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
