import Foundation

/// The `Encoder` handed to a value's `encode(to:)` by `WireJSONWriter`: its containers write straight into the
/// writer's bytes. A value may ask for its keyed container more than once (a detail DTO encodes its summary first,
/// then adds keys): the same object continues.
final class WireEncoder: Encoder {
    struct Key: CodingKey {
        let stringValue: String
        let intValue: Int?
        init(_ string: String) { stringValue = string; intValue = nil }
        init(stringValue: String) { self.init(stringValue) }
        init(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
    }

    private enum Shape { case none, keyed, unkeyed, single }

    let writer: WireJSONWriter
    let parent: WireEncoder?
    let key: (any CodingKey)?
    /// Containers open when this value began; its own container (if any) is the next one.
    let baseDepth: Int
    @exclusivity(unchecked) private var shape = Shape.none
    /// Whether the container has had an element yet (for the commas).
    @exclusivity(unchecked) fileprivate var empty = true
    @exclusivity(unchecked) fileprivate var count = 0
    /// A super encoder handed out for this container's latest element: `{}` if it encoded nothing by the time the
    /// container moves on (the caller never finishes it).
    @exclusivity(unchecked) fileprivate var handedOut: WireEncoder?

    init(writer: WireJSONWriter, parent: WireEncoder?, key: (any CodingKey)?) {
        self.writer = writer
        self.parent = parent
        self.key = key
        self.baseDepth = writer.depth
    }

    /// Built when asked (rarely): most values never read it.
    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var node: WireEncoder? = self
        while let current = node {
            if let key = current.key { path.append(key) }
            node = current.parent
        }
        return path.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<K: CodingKey>(keyedBy type: K.Type) -> KeyedEncodingContainer<K> {
        if shape == .none {
            shape = .keyed
            writer.open(UInt8(ascii: "{"), closer: UInt8(ascii: "}"), owner: self)
        }
        return KeyedEncodingContainer(KeyedContainer<K>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if shape == .none {
            shape = .unkeyed
            writer.open(UInt8(ascii: "["), closer: UInt8(ascii: "]"), owner: self)
        }
        return UnkeyedContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        if shape == .none { shape = .single }
        return SingleValueContainer(encoder: self)
    }

    /// After the value's `encode(to:)`: closes what it opened; a value that encoded nothing is an empty object.
    func finish() {
        settleHandedOut()
        if shape == .none {
            writer.bytes.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")])
        } else {
            writer.close(downTo: baseDepth)
        }
    }

    /// Before an element of this encoder's container: closes any nested container of the previous one, then a comma.
    fileprivate func nextElement() {
        settleHandedOut()
        writer.close(downTo: baseDepth + 1)
        if !empty { writer.bytes.append(UInt8(ascii: ",")) }
        empty = false
        count += 1
    }

    func settleHandedOut() {
        guard let child = handedOut else { return }
        handedOut = nil
        if child.shape == .none { writer.bytes.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")]) }
    }

    fileprivate func hand(_ child: WireEncoder) -> WireEncoder {
        handedOut = child
        return child
    }

    fileprivate func element<T: Encodable>(_ value: T, key: any CodingKey) throws {
        try writer.value(value, parent: self, key: key)
    }
}

private struct KeyedContainer<K: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: WireEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func begin(_ key: K) {
        encoder.nextElement()
        encoder.writer.key(key.stringValue)
    }

    mutating func encodeNil(forKey key: K) throws { begin(key); encoder.writer.null() }
    mutating func encode(_ value: Bool, forKey key: K) throws { begin(key); encoder.writer.bool(value) }
    mutating func encode(_ value: String, forKey key: K) throws { begin(key); encoder.writer.string(value) }
    mutating func encode(_ value: Double, forKey key: K) throws {
        begin(key)
        try encoder.writer.number(value, path: encoder, key: key)
    }
    mutating func encode(_ value: Float, forKey key: K) throws {
        begin(key)
        try encoder.writer.number(value, path: encoder, key: key)
    }
    mutating func encode(_ value: Int, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: Int8, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: Int16, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: Int32, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: Int64, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: UInt, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: UInt8, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: UInt16, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: UInt32, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode(_ value: UInt64, forKey key: K) throws { begin(key); encoder.writer.integer(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: K) throws { begin(key); try encoder.element(value, key: key) }

    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type, forKey key: K) -> KeyedEncodingContainer<N> {
        begin(key)
        return WireEncoder(writer: encoder.writer, parent: encoder, key: key).container(keyedBy: N.self)
    }

    mutating func nestedUnkeyedContainer(forKey key: K) -> any UnkeyedEncodingContainer {
        begin(key)
        return WireEncoder(writer: encoder.writer, parent: encoder, key: key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.nextElement()
        encoder.writer.key("super")
        return encoder.hand(WireEncoder(writer: encoder.writer, parent: encoder, key: WireEncoder.Key("super")))
    }

    mutating func superEncoder(forKey key: K) -> any Encoder {
        begin(key)
        return encoder.hand(WireEncoder(writer: encoder.writer, parent: encoder, key: key))
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: WireEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { encoder.count }

    private func begin() -> WireEncoder.Key {
        let index = encoder.count
        encoder.nextElement()
        return WireEncoder.Key(intValue: index)
    }

    mutating func encodeNil() throws { _ = begin(); encoder.writer.null() }
    mutating func encode(_ value: String) throws { _ = begin(); encoder.writer.string(value) }
    mutating func encode(_ value: Int) throws { _ = begin(); encoder.writer.integer(value) }
    mutating func encode(_ value: Double) throws {
        let key = begin()
        try encoder.writer.number(value, path: encoder, key: key)
    }
    mutating func encode(_ value: Bool) throws { try element(value) }
    mutating func encode(_ value: Float) throws { try element(value) }
    mutating func encode(_ value: Int8) throws { try element(value) }
    mutating func encode(_ value: Int16) throws { try element(value) }
    mutating func encode(_ value: Int32) throws { try element(value) }
    mutating func encode(_ value: Int64) throws { try element(value) }
    mutating func encode(_ value: UInt) throws { try element(value) }
    mutating func encode(_ value: UInt8) throws { try element(value) }
    mutating func encode(_ value: UInt16) throws { try element(value) }
    mutating func encode(_ value: UInt32) throws { try element(value) }
    mutating func encode(_ value: UInt64) throws { try element(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try element(value) }

    /// Any other value: the writer's generic path (a primitive reaches `SingleValueContainer` through its own encode).
    private func element<T: Encodable>(_ value: T) throws {
        let key = begin()
        try encoder.element(value, key: key)
    }

    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type) -> KeyedEncodingContainer<N> {
        let key = begin()
        return encoder.hand(WireEncoder(writer: encoder.writer, parent: encoder, key: key)).container(keyedBy: N.self)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let key = begin()
        return encoder.hand(WireEncoder(writer: encoder.writer, parent: encoder, key: key)).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let key = begin()
        return encoder.hand(WireEncoder(writer: encoder.writer, parent: encoder, key: key))
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let encoder: WireEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.writer.null() }
    mutating func encode(_ value: String) throws { encoder.writer.string(value) }
    mutating func encode(_ value: Bool) throws { encoder.writer.bool(value) }
    mutating func encode(_ value: Double) throws { try encoder.writer.number(value, path: encoder.parent, key: encoder.key) }
    mutating func encode(_ value: Float) throws { try encoder.writer.number(value, path: encoder.parent, key: encoder.key) }
    mutating func encode(_ value: Int) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: Int8) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: Int16) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: Int32) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: Int64) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: UInt) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: UInt8) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: UInt16) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: UInt32) throws { encoder.writer.integer(value) }
    mutating func encode(_ value: UInt64) throws { encoder.writer.integer(value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.writer.value(value, parent: encoder.parent, key: encoder.key)
    }
}
