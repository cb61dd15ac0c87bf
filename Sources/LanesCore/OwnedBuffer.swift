/// A run of `count` values in memory allocated once, freed when the last
/// reference goes. Apps are Copyable (the engine makes them, a lane runs its
/// copy, the summary reads the copy the lane hands back), so raw memory an app
/// uses lives in one of these, never in the struct itself: every copy keeps the
/// memory alive and none can free it under another. The app keeps `pointer` in
/// a stored property too, so its hot path reads the memory with no reference
/// counting (copies retain only when they are made, during set-up).
public final class OwnedBuffer<Element>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Element>
    public let count: Int

    /// `count` copies of `initial`, at least `alignment`-aligned.
    public init(count: Int, initial: Element, alignment: Int = MemoryLayout<Element>.alignment) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Element>.stride,
                                                   alignment: max(alignment, MemoryLayout<Element>.alignment))
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        pointer.initialize(repeating: initial, count: count)
    }

    deinit {
        pointer.deinitialize(count: count)
        UnsafeMutableRawPointer(pointer).deallocate()
    }
}
