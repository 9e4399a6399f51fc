//! One instance's record in Prometheus's text format, for node_exporter's
//! textfile collector (`metrics-dir`, `floaty_NAME.prom`) and the FIFO
//! daemon's `/metrics`. No timestamps (the collector skips files that have
//! them); freshness is `node_textfile_mtime_seconds`. Every series carries
//! `vrrp_instance`, so that the files of several instances never hold the
//! same series twice (the collector would reject the scrape). Not
//! `instance`: Prometheus sets that label to the scrape target and would
//! rename ours to `exported_instance`.

use std::fmt::Write;

use super::record::{Histogram, InstanceRecord, Role};

/// keepalived states numbered like mehdy/keepalived-exporter's, so that
/// dashboards can be reused (keepalived-health.md §4.3).
pub fn state_number(state: &str) -> Option<u8> {
    Some(match state {
        "INIT" => 0,
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        "DELETED" => 97,
        "STOP" => 98,
        _ => return None,
    })
}

/// A label value as the text format wants it: `\`, `"` and newlines
/// escaped.
pub fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        for (le, n) in h.cumulative() {
            let le = le.map_or("+Inf".to_string(), |b| b.to_string());
            let mut with = labels.to_vec();
            with.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with, n);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// The text for one instance (a textfile).
pub fn render(r: &InstanceRecord) -> String {
    render_all(std::slice::from_ref(r))
}

/// The text for several instances (the FIFO daemon's `/metrics`): each
/// family once, its samples for every instance together, as the format
/// requires.
pub fn render_all(records: &[InstanceRecord]) -> String {
    let mut o = Out {
        text: String::with_capacity(4096 * records.len().max(1)),
    };
    let mut samples = Out {
        text: String::new(),
    };
    for family in FAMILIES {
        samples.text.clear();
        for r in records {
            (family.samples)(&mut samples, family.name, r);
        }
        if !samples.text.is_empty() {
            o.family(family.name, family.kind, family.help);
            o.text.push_str(&samples.text);
        }
    }
    o.text
}

/// One metric family: its HELP and TYPE lines, and how one record's
/// samples of it are written (under `name`). A family none of the records
/// has a sample for is left out whole.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: fn(&mut Out, &'static str, &InstanceRecord),
}

const FAMILIES: &[Family] = &[
    Family {
        name: "floaty_build_info",
        kind: "gauge",
        help: "floaty's version; always 1.",
        samples: |o, name, r| {
            o.sample(
                name,
                &[("vrrp_instance", &r.instance), ("version", env!("CARGO_PKG_VERSION"))],
                1,
            )
        },
    },
    Family {
        name: "floaty_keepalived_state",
        kind: "gauge",
        help: "keepalived's last state for the instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 97 DELETED, 98 STOP.",
        samples: |o, name, r| {
            if let Some(n) = r.keepalived_state.as_deref().and_then(state_number) {
                o.sample(name, &[("vrrp_instance", &r.instance)], n);
            }
        },
    },
    Family {
        name: "floaty_refresh_interval_seconds",
        kind: "gauge",
        help: "refresh-interval: how often a MASTER reads or writes the address.",
        samples: |o, name, r| {
            o.sample(
                name,
                &[("vrrp_instance", &r.instance)],
                r.refresh_interval_seconds,
            )
        },
    },
    Family {
        name: "floaty_refresher_running",
        kind: "gauge",
        help: "1 while a refresher keeps the instance's addresses pointed here.",
        samples: |o, name, r| {
            o.sample(
                name,
                &[("vrrp_instance", &r.instance)],
                u8::from(r.role == Role::Refresher),
            )
        },
    },
    Family {
        name: "floaty_health_value",
        kind: "gauge",
        help: "The integer last written to the instance's track_file: 0 ready, negative demoted, -254 drained.",
        samples: |o, name, r| {
            if let Some(v) = r.health_value {
                o.sample(name, &[("vrrp_instance", &r.instance)], v);
            }
        },
    },
    Family {
        name: "floaty_drained",
        kind: "gauge",
        help: "1 while the instance is drained (floaty --drain).",
        samples: |o, name, r| {
            if let Some(d) = r.drained {
                o.sample(name, &[("vrrp_instance", &r.instance)], u8::from(d));
            }
        },
    },
    Family {
        name: "floaty_address_owner_match",
        kind: "gauge",
        help: "1 when the cloud's last answer said the address points at this node.",
        samples: |o, name, r| {
            for a in &r.addresses {
                if let Some(here) = a.owner_is_here {
                    let addr = a.address.to_string();
                    o.sample(
                        name,
                        &[
                            ("vrrp_instance", &r.instance),
                            ("address", &addr),
                            ("provider", &r.provider),
                        ],
                        u8::from(here),
                    );
                }
            }
        },
    },
    Family {
        name: "floaty_last_success_timestamp_seconds",
        kind: "gauge",
        help: "When a refresh or probe of the address last succeeded.",
        samples: |o, name, r| {
            for a in &r.addresses {
                if let Some(t) = a.last_success {
                    let addr = a.address.to_string();
                    o.sample(
                        name,
                        &[("vrrp_instance", &r.instance), ("address", &addr)],
                        t,
                    );
                }
            }
        },
    },
    Family {
        name: "floaty_refresh_total",
        kind: "counter",
        help: "Refreshes and probes tried, each retry counted.",
        samples: |o, name, r| {
            let total: u64 = r.addresses.iter().map(|a| a.refreshes).sum();
            o.sample(
                name,
                &[("vrrp_instance", &r.instance), ("provider", &r.provider)],
                total,
            );
        },
    },
    Family {
        name: "floaty_refresh_errors_total",
        kind: "counter",
        help: "Failed refresh and probe attempts, by reason.",
        samples: |o, name, r| {
            let mut errors = std::collections::BTreeMap::<&str, u64>::new();
            for a in &r.addresses {
                for (reason, n) in &a.errors {
                    *errors.entry(reason.as_str()).or_default() += n;
                }
            }
            for (reason, n) in errors {
                o.sample(
                    name,
                    &[
                        ("vrrp_instance", &r.instance),
                        ("provider", &r.provider),
                        ("reason", reason),
                    ],
                    n,
                );
            }
        },
    },
    Family {
        name: "floaty_address_corrections_total",
        kind: "counter",
        help: "Times the address was found elsewhere while this node refreshed it, and re-pointed here.",
        samples: |o, name, r| {
            for a in &r.addresses {
                let addr = a.address.to_string();
                o.sample(
                    name,
                    &[("vrrp_instance", &r.instance), ("address", &addr)],
                    a.corrections,
                );
            }
        },
    },
    Family {
        name: "floaty_split_brain_repairs_total",
        kind: "counter",
        help: "Re-asserts started by keepalived's MASTER_RX_LOWER_PRI.",
        samples: |o, name, r| {
            o.sample(
                name,
                &[("vrrp_instance", &r.instance)],
                r.split_brain_repairs,
            )
        },
    },
    Family {
        name: "floaty_events_total",
        kind: "counter",
        help: "keepalived events for the instance, by state and by how they came (notify, fifo).",
        samples: |o, name, r| {
            for (key, n) in &r.events {
                let (state, source) = key.split_once('/').unwrap_or((key.as_str(), ""));
                o.sample(
                    name,
                    &[("vrrp_instance", &r.instance), ("state", state), ("source", source)],
                    n,
                );
            }
        },
    },
    Family {
        name: "floaty_api_request_duration_seconds",
        kind: "histogram",
        help: "Cloud API requests by operation (get, assign) and HTTP status (none: no answer).",
        samples: |o, name, r| {
            for (key, h) in &r.api {
                let (operation, code) = key.split_once(' ').unwrap_or((key.as_str(), "none"));
                o.histogram(
                    name,
                    &[
                        ("vrrp_instance", &r.instance),
                        ("provider", &r.provider),
                        ("operation", operation),
                        ("code", code),
                    ],
                    h,
                );
            }
        },
    },
    Family {
        name: "floaty_failover_duration_seconds",
        kind: "histogram",
        help: "From keepalived's MASTER event to the cloud confirming the address points here.",
        samples: |o, name, r| {
            o.histogram(
                name,
                &[("vrrp_instance", &r.instance)],
                &r.failover,
            )
        },
    },
];

#[cfg(test)]
mod tests {
    use super::super::record::{AddressRecord, SCHEMA};
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_instance_with_quotes_renders_one_sample_per_line() {
        let mut r = InstanceRecord {
            schema: SCHEMA,
            instance: "VI \"x\".1".into(),
            provider: "cloudscale".into(),
            keepalived_state: Some("MASTER".into()),
            role: Role::Refresher,
            ..InstanceRecord::default()
        };
        let mut a = AddressRecord::new("192.0.2.10".parse().unwrap());
        a.owner_is_here = Some(true);
        a.errors.insert("5xx".into(), 2);
        r.addresses.push(a);
        r.events.insert("MASTER/notify".into(), 1);
        let text = render(&r);
        assert!(text.ends_with('\n'));
        assert!(text.contains(
            "floaty_address_owner_match{vrrp_instance=\"VI \\\"x\\\".1\",address=\"192.0.2.10\",provider=\"cloudscale\"} 1\n"
        ));
        assert!(text.contains("floaty_keepalived_state{vrrp_instance=\"VI \\\"x\\\".1\"} 2\n"));
        assert!(text.contains("reason=\"5xx\"} 2\n"));
        assert!(text.contains(
            "floaty_failover_duration_seconds_bucket{vrrp_instance=\"VI \\\"x\\\".1\",le=\"+Inf\"} 0\n"
        ));
        assert!(
            !text.contains("floaty_health_value"),
            "no track file, no health value"
        );
    }
}
