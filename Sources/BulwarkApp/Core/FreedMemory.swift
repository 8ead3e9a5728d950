import FluentKit
import SQLKit
import Vapor

/// After a large import or export: glibc keeps the freed memory in its arenas, and each SQLite connection keeps up to
/// 16 MB of pages the bulk work pulled through its cache (pages the lists' hot ones were pushed out for anyway), so
/// the process would stay near its peak. Handing both back brings RSS near idle again; the cache refills with what
/// requests read next.
enum FreedMemory {
    static func returnToSystem(_ app: Application) async {
        if case .sqliteFile = app.settings.database {
            for eventLoop in app.eventLoopGroup.makeIterator() {
                guard let db = app.databases.database(.sqlite, logger: app.logger, on: eventLoop) else { continue }
                try? await db.sql.raw("PRAGMA shrink_memory").run()
            }
        }
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }
}

#if os(Linux)
// Not in Swift's Glibc module; `int malloc_trim(size_t pad)` from <malloc.h>.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
