import Foundation
import NIOConcurrencyHelpers

/// Campaigns this process cancelled or completed, which its senders check before each message without a query: a
/// sender reads whether a message is still claimed while the previous outcome is written, so that read may come just
/// before a cancel commits. Other processes learn of a cancel from the rows, by that read. Bounded: the oldest ids are
/// forgotten first (by then their rows say it).
enum StoppedCampaigns {
    static let capacity = 1_000
    private static let recent = NIOLockedValueBox<(ids: Set<UUID>, order: [UUID])>(([], []))

    static func note(_ id: UUID) {
        recent.withLockedValue { recent in
            guard recent.ids.insert(id).inserted else { return }
            recent.order.append(id)
            if recent.order.count > capacity { recent.ids.remove(recent.order.removeFirst()) }
        }
    }

    static func contains(_ id: UUID) -> Bool { recent.withLockedValue { $0.ids.contains(id) } }
}
