import Prometheus
import Vapor

/// Counters for /metrics: simulations sent and tracking events by kind.
struct PhishingMetrics: Sendable {
    let sent: Prometheus.Counter
    let events: @Sendable (String) -> Prometheus.Counter

    static let shared = PhishingMetrics(
        sent: BulwarkMetrics.registry.makeCounter(name: "bulwark_phishing_emails_sent_total"),
        events: { kind in BulwarkMetrics.registry.makeCounter(name: "bulwark_phishing_tracking_events_total", labels: [("kind", kind)]) })
}

extension Application {
    var phishingMetrics: PhishingMetrics { .shared }
}
