@testable import BulwarkApp
import NIOCore
import NIOPosix
import Testing

@Suite struct WriterThreadTests {
    /// The flusher's work runs on the writer's thread, before and after each await, never on a request event loop.
    @Test func workPreferringTheWriterThreadStaysOffTheEventLoops() async throws {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let seen = try await Task(executorPreference: WriterThread.shared) {
            var seen: [Bool] = []
            for _ in 0..<3 {
                seen.append(WriterThread.shared.isCurrent && !loops.contains { $0.inEventLoop })
                try await loops[0].submit {}.get()
            }
            seen.append(WriterThread.shared.isCurrent && !loops.contains { $0.inEventLoop })
            return seen
        }.value
        #expect(seen == [true, true, true, true])
        #expect(!WriterThread.shared.isCurrent)
    }
}
