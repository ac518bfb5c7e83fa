//! Global Integrity (GI) and the Mobius Integrity Index (MII), SPEC §8. Pure math: the
//! integrity monitor measures the components; this module combines them.
//!
//! A component that cannot be measured yet (its service does not exist in this deployment)
//! is `None` and the weights of the others are renormalised — it is never filled with a
//! constant.

/// GI weights (config `integrity.weights`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub ledger: f64,
    pub economy: f64,
    pub reliability: f64,
    pub sentinels: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            ledger: 0.35,
            economy: 0.25,
            reliability: 0.25,
            sentinels: 0.15,
        }
    }
}

/// Measured components, each in [0, 1], or `None` when not measurable in this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Components {
    pub ledger: Option<f64>,
    pub economy: Option<f64>,
    pub reliability: Option<f64>,
    pub sentinels: Option<f64>,
}

/// GI = Σ wᵢ·cᵢ / Σ wᵢ over the measured components; `None` when nothing is measured.
pub fn gi(c: &Components, w: &Weights) -> Option<f64> {
    let parts = [
        (c.ledger, w.ledger),
        (c.economy, w.economy),
        (c.reliability, w.reliability),
        (c.sentinels, w.sentinels),
    ];
    let (mut num, mut den) = (0.0, 0.0);
    for (v, wt) in parts {
        if let Some(v) = v {
            num += wt * v.clamp(0.0, 1.0);
            den += wt;
        }
    }
    (den > 0.0).then(|| (num / den).clamp(0.0, 1.0))
}

/// Time constant of the MII: one hour.
pub const MII_TAU_MS: f64 = 3_600_000.0;

/// Continuous-time EWMA: after `dt_ms` the previous value keeps weight exp(−dt/τ), so the
/// result does not depend on how regularly samples arrive. The first sample starts the MII.
pub fn mii_update(previous: Option<(f64, i64)>, gi: f64, at_ms: i64) -> f64 {
    match previous {
        None => gi,
        Some((mii, prev_ms)) => {
            let dt = (at_ms - prev_ms).max(0) as f64;
            let keep = (-dt / MII_TAU_MS).exp();
            keep * mii + (1.0 - keep) * gi
        }
    }
}

/// Operating bands (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// ≥ 0.99
    Target,
    /// 0.97 ≤ GI < 0.99
    Healthy,
    /// 0.95 ≤ GI < 0.97
    Warning,
    /// 0.90 ≤ GI < 0.95: halt automation
    Critical,
    /// < 0.90
    SafeStop,
}

pub const GI_THRESHOLD: f64 = 0.95;

pub fn band(gi: f64) -> Band {
    if gi >= 0.99 {
        Band::Target
    } else if gi >= 0.97 {
        Band::Healthy
    } else if gi >= GI_THRESHOLD {
        Band::Warning
    } else if gi >= 0.90 {
        Band::Critical
    } else {
        Band::SafeStop
    }
}

/// One service's reliability (SPEC §8 R): availability × (1 − min(1, 5xx rate / 5%)) ×
/// latency factor (1 at p95 ≤ 1 s, falling linearly to 0 at 5 s).
pub fn service_reliability(availability: f64, error_rate: f64, p95_s: f64) -> f64 {
    let errors = 1.0 - (error_rate / 0.05).min(1.0);
    let latency = if p95_s <= 1.0 {
        1.0
    } else {
        ((5.0 - p95_s) / 4.0).clamp(0.0, 1.0)
    };
    (availability.clamp(0.0, 1.0) * errors.max(0.0) * latency).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gi_renormalises_over_measured_components() {
        let w = Weights::default();
        let all = Components {
            ledger: Some(1.0),
            economy: Some(1.0),
            reliability: Some(1.0),
            sentinels: Some(1.0),
        };
        assert_eq!(gi(&all, &w), Some(1.0));
        // Only ledger and reliability measured: 0.35·0 + 0.25·1 over 0.60.
        let two = Components {
            ledger: Some(0.0),
            reliability: Some(1.0),
            ..Components::default()
        };
        assert!((gi(&two, &w).unwrap() - 0.25 / 0.60).abs() < 1e-12);
        assert_eq!(gi(&Components::default(), &w), None);
        // The SPEC's full formula.
        let c = Components {
            ledger: Some(1.0),
            economy: Some(1.0),
            reliability: Some(0.8),
            sentinels: Some(0.5),
        };
        assert!((gi(&c, &w).unwrap() - (0.35 + 0.25 + 0.25 * 0.8 + 0.15 * 0.5)).abs() < 1e-12);
    }

    #[test]
    fn mii_is_a_time_constant_ewma() {
        assert_eq!(mii_update(None, 0.9, 0), 0.9);
        // After exactly one time constant, 1/e of the old value remains.
        let m = mii_update(Some((1.0, 0)), 0.0, 3_600_000);
        assert!((m - (-1.0f64).exp()).abs() < 1e-12);
        // Ten 10-second steps equal one 100-second step.
        let mut stepped = 1.0;
        for i in 1..=10 {
            stepped = mii_update(Some((stepped, (i - 1) * 10_000)), 0.5, i * 10_000);
        }
        let once = mii_update(Some((1.0, 0)), 0.5, 100_000);
        assert!((stepped - once).abs() < 1e-12);
    }

    #[test]
    fn bands_and_reliability() {
        assert_eq!(band(1.0), Band::Target);
        assert_eq!(band(0.98), Band::Healthy);
        assert_eq!(band(0.96), Band::Warning);
        assert_eq!(band(0.949), Band::Critical);
        assert_eq!(band(0.5), Band::SafeStop);
        assert_eq!(service_reliability(1.0, 0.0, 0.2), 1.0);
        assert!((service_reliability(1.0, 0.025, 0.2) - 0.5).abs() < 1e-12);
        assert!((service_reliability(1.0, 0.0, 3.0) - 0.5).abs() < 1e-12);
        assert_eq!(service_reliability(1.0, 0.0, 6.0), 0.0);
        assert_eq!(service_reliability(0.0, 0.0, 0.1), 0.0);
    }
}
