// Package dashboards holds Switchyard's Grafana dashboards (cost.json,
// traffic.json, policy.json) and their provisioning files
// (provisioning/dashboards.yaml, provisioning/datasource.yaml).
//
// The dashboards come in two forms, because Grafana's two ways of loading
// one disagree about data sources:
//
//   - The files here are for file provisioning. Their panels use the
//     ${datasource} variable (the default Prometheus unless one is
//     chosen), and they have no __inputs: provisioning does not resolve
//     inputs, and a ${DS_PROMETHEUS} left in a provisioned dashboard
//     names no data source.
//   - deploy/grafana/import/ holds the same dashboards for a manual import
//     (Dashboards → New → Import): __inputs declares one Prometheus data
//     source, DS_PROMETHEUS, that the import wizard asks for, __requires
//     what they need, and every data source uid is ${DS_PROMETHEUS}; the
//     ${datasource} variable, which would only shadow the input, is left
//     out. They are generated from the files here by import_test.go and
//     must stay in step: SWITCHYARD_UPDATE_DASHBOARDS=1 go test ./dashboards
//     rewrites them, and the test fails while they differ. They live
//     outside this directory because Grafana's file provider loads every
//     *.json under its path, subdirectories included.
//
// The panels split traffic by backend kind with the switchyard_backend_kind
// label that every request, token, cost and latency metric carries, never
// by matching model names against the deployments' health gauge (the
// calls of a proprietary API serving a self-hosted pool's model name would
// count as local); structure_test.go rejects such joins.
//
// The package has no code: its tests check the dashboards' structure and
// evaluate every panel's query against a real Prometheus, run on the
// shipped scrape configuration (deploy/prometheus/prometheus.yml, its
// target replaced by a test gateway), scraping that gateway after
// synthetic traffic; the panels that split traffic by kind must give the
// split the responses report. They are skipped when the prometheus binary
// is not installed, unless SWITCHYARD_REQUIRE_PROMETHEUS=1.
package dashboards
