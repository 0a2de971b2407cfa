//! The alert rule, once: whether a flow alerts, and at what probability. `weir analyze`, the
//! Lambda and GPU workers (through `weir_records::verdict_columns`), the evaluation
//! (`weir_train::decide_flows`: `weir eval`, the corpus test, the federated simulation) all
//! call [`AlertScore::of`], so what is measured is what runs.

/// How a flow stands against the alert line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlertScore {
    /// A behaviour detector decided its class: it alerts, whatever the threshold.
    Detector,
    /// The model's verdict may alert: it does at a threshold of at most this probability.
    Model(f32),
    /// It cannot alert at any threshold: the model says Normal, the flow is a lone packet
    /// (`weir_flow::model_may_alert`), or the probability is under the class's own threshold.
    Never,
}

/// One flow's inputs to the rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowVerdict {
    /// A behaviour detector decided the flow's class.
    pub detector: bool,
    /// The model's most probable class is Normal.
    pub normal: bool,
    /// The model's probability of its most probable class.
    pub probability: f32,
    /// That class's own alert threshold ([`crate::ModelInfo::alert_thresholds`]; 0: none).
    pub class_threshold: f32,
    /// The model may not alert on this flow on its own (a lone packet).
    pub silenced: bool,
}

impl AlertScore {
    /// The rule: a detector's finding alerts; else the model's non-Normal verdict on a flow it
    /// may judge, at its probability, once that reaches the class's own threshold.
    pub fn of(v: &FlowVerdict) -> AlertScore {
        if v.detector {
            AlertScore::Detector
        } else if v.normal || v.silenced || v.probability < v.class_threshold {
            AlertScore::Never
        } else {
            AlertScore::Model(v.probability)
        }
    }

    /// Whether the flow alerts with the user's floor `min_probability` (`--min-probability`).
    pub fn alerts(self, min_probability: f32) -> bool {
        match self {
            AlertScore::Detector => true,
            AlertScore::Model(q) => q >= min_probability,
            AlertScore::Never => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(detector: bool, normal: bool, p: f32, t: f32, silenced: bool) -> FlowVerdict {
        FlowVerdict {
            detector,
            normal,
            probability: p,
            class_threshold: t,
            silenced,
        }
    }

    #[test]
    fn the_rule() {
        // A detector alerts even on a lone packet the model calls Normal.
        assert!(AlertScore::of(&v(true, true, 0.1, 0.9, true)).alerts(1.0));
        // The model: non-Normal, more than one packet, at or over its class's threshold.
        assert_eq!(
            AlertScore::of(&v(false, false, 0.7, 0.6, false)),
            AlertScore::Model(0.7)
        );
        assert!(AlertScore::of(&v(false, false, 0.7, 0.6, false)).alerts(0.7));
        assert!(!AlertScore::of(&v(false, false, 0.7, 0.6, false)).alerts(0.71));
        for never in [
            v(false, true, 0.99, 0.0, false),
            v(false, false, 0.99, 0.0, true),
            v(false, false, 0.59, 0.6, false),
        ] {
            assert_eq!(AlertScore::of(&never), AlertScore::Never, "{never:?}");
            assert!(!AlertScore::of(&never).alerts(0.0));
        }
    }
}
