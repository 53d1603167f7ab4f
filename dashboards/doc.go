// Package dashboards holds Switchyard's Grafana dashboards (cost.json,
// traffic.json, policy.json) and their provisioning files
// (provisioning/dashboards.yaml, provisioning/datasource.yaml).
//
// The package has no code: its tests check the dashboards' structure and
// evaluate every panel's query against a real Prometheus scraping a real
// gateway after synthetic traffic (skipped when the prometheus binary is
// not installed, unless SWITCHYARD_REQUIRE_PROMETHEUS=1).
package dashboards
