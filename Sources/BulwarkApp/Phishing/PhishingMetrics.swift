import Prometheus
import Vapor

/// Counters for /metrics: simulations sent and tracking events by kind.
struct PhishingMetrics: Sendable {
    let sent: Prometheus.Counter
    let events: @Sendable (String) -> Prometheus.Counter

    static var sentDescriptor: MetricNameDescriptor { MetricNameDescriptor(namespace: "bulwark", subsystem: "phishing", metricName: "emails_sent",
                                                     unitName: "total", helpText: "Phishing simulation emails accepted by the SMTP server") }
    static var eventsDescriptor: MetricNameDescriptor { MetricNameDescriptor(namespace: "bulwark", subsystem: "phishing", metricName: "tracking_events",
                                                       unitName: "total", helpText: "Tracking events recorded, by kind (_flagged: scanners)") }

    static let shared = PhishingMetrics(
        sent: BulwarkMetrics.registry.makeCounter(descriptor: sentDescriptor),
        events: { kind in BulwarkMetrics.registry.makeCounter(descriptor: eventsDescriptor, labels: [("kind", kind)]) })
}

extension Application {
    var phishingMetrics: PhishingMetrics { .shared }
}
