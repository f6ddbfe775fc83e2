//! Prometheus metrics, served at `GET /metrics`: requests by command and status, latency
//! histograms by command, SOAP faults by kind, e-mail sent and failed. Labels are command and status names only,
//! never a value from a request.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Cheap to clone: clones share the same metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    faults: IntCounterVec,
    in_flight: IntGauge,
    mail_sent: IntCounter,
    mail_failed: IntCounter,
    mail_given_up: IntCounter,
    mail_queued: IntGauge,
    hermod_callbacks: IntCounterVec,
}

/// Counts one provisioning call as in flight until dropped.
pub struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "provd_requests_total",
                "Provisioning calls by command and status (failures by reason).",
            ),
            &["command", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "provd_request_duration_seconds",
                "Time from the request body to the response, by command.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["command"],
        )
        .expect("valid metric");
        let faults = IntCounterVec::new(
            Opts::new("provd_soap_faults_total", "SOAP Faults by kind."),
            &["kind"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new(
            "provd_requests_in_flight",
            "Provisioning calls being processed now.",
        )
        .expect("valid metric");
        let mail_sent = IntCounter::new("provd_mail_sent_total", "E-mail messages sent.")
            .expect("valid metric");
        let mail_failed = IntCounter::new(
            "provd_mail_failed_total",
            "Failed attempts at sending an e-mail message (each is retried until the last).",
        )
        .expect("valid metric");
        let mail_given_up = IntCounter::new(
            "provd_mail_given_up_total",
            "E-mail messages marked failed: attempts exhausted, or undeliverable.",
        )
        .expect("valid metric");
        let mail_queued = IntGauge::new(
            "provd_mail_queued",
            "E-mail messages waiting in the outbox (all instances), as of the last scan.",
        )
        .expect("valid metric");
        let hermod_callbacks = IntCounterVec::new(
            Opts::new(
                "provd_hermod_callbacks_total",
                "Hermod callback attempts by result (sent, retry, failed).",
            ),
            &["result"],
        )
        .expect("valid metric");
        for c in [
            Box::new(hermod_callbacks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(faults.clone()),
            Box::new(in_flight.clone()),
            Box::new(mail_sent.clone()),
            Box::new(mail_failed.clone()),
            Box::new(mail_given_up.clone()),
            Box::new(mail_queued.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            latency,
            faults,
            in_flight,
            mail_sent,
            mail_failed,
            mail_given_up,
            mail_queued,
            hermod_callbacks,
        }
    }

    /// One callback attempt of the Hermod front: `sent`, `retry` or `failed`.
    pub fn hermod_callback(&self, result: &str) {
        self.hermod_callbacks.with_label_values(&[result]).inc();
    }

    pub fn mail_sent(&self) {
        self.mail_sent.inc();
    }

    /// One failed attempt; `given_up` when the message will not be tried again.
    pub fn mail_failed(&self, given_up: bool) {
        self.mail_failed.inc();
        if given_up {
            self.mail_given_up.inc();
        }
    }

    pub fn mail_queued(&self, n: i64) {
        self.mail_queued.set(n);
    }

    /// Marks a call in flight for as long as the returned guard lives.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn call(&self, command: &str, status: &str, seconds: f64) {
        self.requests.with_label_values(&[command, status]).inc();
        self.latency.with_label_values(&[command]).observe(seconds);
    }

    pub fn fault(&self, kind: &str) {
        self.faults.with_label_values(&[kind]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new();
        m.call("dsappSRPRegister", "STAT_INVCREDENTIALS", 0.02);
        m.call("dsappSRPRegister", "STAT_INVCREDENTIALS", 0.03);
        m.fault("malformed");
        m.clone().mail_sent();
        m.mail_failed(true);
        let text = m.render();
        assert!(text.contains("provd_mail_sent_total 1"));
        assert!(text.contains("provd_mail_failed_total 1"));
        assert!(text.contains("provd_mail_given_up_total 1"));
        assert!(text.contains(
            r#"provd_requests_total{command="dsappSRPRegister",status="STAT_INVCREDENTIALS"} 2"#
        ));
        assert!(text.contains(r#"provd_soap_faults_total{kind="malformed"} 1"#));
        assert!(text.contains("provd_request_duration_seconds_bucket"));
    }
}
