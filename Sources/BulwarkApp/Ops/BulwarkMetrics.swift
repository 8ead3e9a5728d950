import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The process-wide Prometheus registry. swift-metrics is bootstrapped onto it once per process, so Vapor's own
/// request counters and latency histograms (http_requests_total, http_request_duration_seconds) land in it too.
enum BulwarkMetrics {
    static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = NIOLockedValueBox(false)

    static func bootstrapOnce() {
        bootstrapped.withLockedValue { done in
            guard !done else { return }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
        }
    }
}
