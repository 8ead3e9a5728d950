/// glibc keeps memory freed after a large import or export in its arenas, so the process stays at its peak; handing it
/// back brings RSS near idle again.
enum FreedMemory {
    static func returnToSystem() {
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
