// Package deploy holds the production kit: the Dockerfile, the compose
// example, Kubernetes manifests, the systemd unit, the Grafana dashboard
// and the Prometheus rules. Its tests check them against the real binary
// and the APIs they are written for; it has no code of its own.
package deploy
