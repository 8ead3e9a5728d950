@testable import BulwarkApp
import FluentKit
import Foundation
import Testing

/// Models whose Fluent properties are listed by hand (read and written without reflection) list every one of them,
/// in declaration order, as reflection finds them; a property added later and forgotten would be neither saved nor read.
@Suite struct ModelPropertiesTests {
    static func byReflection(_ model: any Fields) -> [ObjectIdentifier] {
        Mirror(reflecting: model).children.compactMap { $0.value as? any AnyProperty }.map { ObjectIdentifier($0 as AnyObject) }
    }

    static let models: [String: @Sendable () -> any Fields] = [
        "User": { User() }, "TrainingCampaign": { TrainingCampaign() }, "Enrollment": { Enrollment() }, "Simulation": { Simulation() },
    ]

    @Test(arguments: models.keys.sorted())
    func handListedPropertiesAreEveryProperty(name: String) throws {
        let make = try #require(Self.models[name])
        let model = make()
        let listed = model.properties.map { ObjectIdentifier($0 as AnyObject) }
        #expect(!listed.isEmpty)
        #expect(listed == Self.byReflection(model), "\(type(of: model))")
    }
}
