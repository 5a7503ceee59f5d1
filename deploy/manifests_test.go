package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchboard-dev/switchboard/config"
)

// kinds are the Kubernetes kinds the manifests may hold, by apiVersion and
// kind, with the type each decodes into.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                     func() any { return &appsv1.Deployment{} },
	"v1 Service":                             func() any { return &corev1.Service{} },
	"v1 ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1 Secret":                              func() any { return &corev1.Secret{} },
	"policy/v1 PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
}

// strictDecode decodes YAML into v, refusing fields v does not have.
func strictDecode(doc []byte, v any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// documents splits a YAML stream into its documents, dropping empty ones.
func documents(raw []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// Every document of deploy/k8s decodes strictly into its Kubernetes API
// type, and the Deployment keeps the promises docs/operations.md makes.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	seen := map[string]any{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range documents(raw) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Errorf("%s document %d: %v", f, i, err)
				continue
			}
			key := head.APIVersion + " " + head.Kind
			mk, ok := kinds[key]
			if !ok {
				t.Errorf("%s document %d: unknown kind %q", f, i, key)
				continue
			}
			v := mk()
			if err := strictDecode(doc, v); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, key, err)
				continue
			}
			if _, ok := seen[head.Kind]; !ok {
				seen[head.Kind] = v
			}
		}
	}
	for _, k := range []string{"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		if seen[k] == nil {
			t.Errorf("no %s among the manifests", k)
		}
	}
	d, ok := seen["Deployment"].(*appsv1.Deployment)
	if !ok {
		return
	}
	pod := d.Spec.Template.Spec
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("Deployment: pod not runAsNonRoot")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: want a read-only root filesystem and no privilege escalation", c.Name)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("container %s: liveness probe %+v, want GET /healthz", c.Name, c.LivenessProbe)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("container %s: readiness probe %+v, want GET /readyz", c.Name, c.ReadinessProbe)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s: want CPU requests and a memory limit", c.Name)
		}
	}
	if h, ok := seen["HorizontalPodAutoscaler"].(*autoscalingv2.HorizontalPodAutoscaler); ok {
		found := false
		for _, m := range h.Spec.Metrics {
			if m.External != nil && m.External.Metric.Name == "switchboard_queue_lag_seconds" {
				found = true
			}
		}
		if !found {
			t.Error("HorizontalPodAutoscaler: no External metric switchboard_queue_lag_seconds")
		}
	}
}

// compose.yaml parses, and every file it mounts or builds from exists.
func TestCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build *struct {
				Context    string `json:"context"`
				Dockerfile string `json:"dockerfile"`
			} `json:"build"`
			Image   string   `json:"image"`
			Volumes []string `json:"volumes"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, want := range []string{"postgres", "switchboard-1", "switchboard-2", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("compose.yaml: no service %s", want)
		}
	}
	for name, s := range c.Services {
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s builds from %s: %v", name, s.Build.Dockerfile, err)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s mounts volume %s, which is not declared", name, src)
				}
				continue
			}
			if _, err := os.Stat(src); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
}

// The configuration files of the compose example and the Kubernetes
// Secret load, with the variables compose.yaml and the ConfigMap set.
func TestKitConfigurationsLoad(t *testing.T) {
	t.Parallel()
	env := []string{"SWITCHBOARD_PUBLIC_URL=https://hooks.example.com", "SWITCHBOARD_ADMIN_TOKEN=0123456789abcdef",
		"SWITCHBOARD_STORAGE_URL=postgres://switchboard:pw@postgres:5432/switchboard?sslmode=disable"}
	if _, err := config.Load("compose/switchboard.toml", env); err != nil {
		t.Errorf("compose/switchboard.toml: %v", err)
	}

	raw, err := os.ReadFile("k8s/secret.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file string
	for _, doc := range documents(raw) {
		var s corev1.Secret
		if err := strictDecode(doc, &s); err == nil && s.StringData["switchboard.toml"] != "" {
			file = s.StringData["switchboard.toml"]
		}
	}
	var cm corev1.ConfigMap
	raw, err = os.ReadFile("k8s/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := strictDecode(raw, &cm); err != nil {
		t.Fatal(err)
	}
	for k, v := range cm.Data {
		env = append(env, k+"="+v)
	}
	path := filepath.Join(t.TempDir(), "switchboard.toml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, env)
	if err != nil {
		t.Fatalf("the Secret's switchboard.toml with the ConfigMap's variables: %v", err)
	}
	if c.Admin.Listen == "" || c.Admin.Listen == c.Listen {
		t.Errorf("Kubernetes: admin.listen %q beside listen %q, want the admin endpoints apart", c.Admin.Listen, c.Listen)
	}
}

// The unit passes systemd-analyze verify, with ExecStart pointed at the
// built binary (verify checks that it exists).
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("SWITCHBOARD_TEST_REQUIRE_SYSTEMD") != "" {
			t.Fatal("systemd-analyze not found and SWITCHBOARD_TEST_REQUIRE_SYSTEMD is set")
		}
		t.Skip("systemd-analyze not found")
	}
	raw, err := os.ReadFile("systemd/switchboard.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"ExecStart=/usr/local/bin/switchboard serve --config ", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"Restart=on-failure", "StateDirectory=switchboard", "LimitNOFILE="} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/switchboard", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify warned:\n%s", out)
	}
}

// The Dockerfile builds in one stage and runs as non-root in another, with
// a healthcheck that uses the binary itself. The image is built only where
// a Docker daemon runs (SWITCHBOARD_TEST_DOCKER_BUILD set).
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var healthcheck, static bool
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, strings.Join(f[1:], " "))
		case "USER":
			users = append(users, f[1])
		case "HEALTHCHECK":
			healthcheck = strings.Contains(line, "switchboard") || strings.HasSuffix(line, "\\")
		case "RUN":
			if strings.Contains(line, "CGO_ENABLED=0") {
				static = true
			}
		}
	}
	if len(froms) < 2 || !strings.Contains(froms[0], " AS ") {
		t.Errorf("FROM lines %q: want a named build stage and a final stage", froms)
	}
	if len(users) == 0 || users[len(users)-1] == "root" || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("USER %q: want a non-root user in the final stage", users)
	}
	if !healthcheck || !strings.Contains(string(raw), `"healthcheck"`) {
		t.Error("no HEALTHCHECK running switchboard healthcheck")
	}
	if !static || !strings.Contains(string(raw), "-trimpath") {
		t.Error("the binary is not built static (CGO_ENABLED=0) with -trimpath")
	}
	if os.Getenv("SWITCHBOARD_TEST_DOCKER_BUILD") == "" {
		t.Log("image not built: set SWITCHBOARD_TEST_DOCKER_BUILD where a Docker daemon runs")
		return
	}
	out, err := exec.Command("docker", "build", "-f", "deploy/Dockerfile", "-t", "switchboard:test", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

// Every service of compose.yaml is bounded in memory and CPU, and no
// secret (a password, token or key) has a value written in the file:
// each must come from the operator's environment, with no default to
// fall back on.
func TestComposeSecretsAndLimits(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Environment map[string]string `json:"environment"`
			Deploy      struct {
				Resources struct {
					Limits struct {
						Memory string `json:"memory"`
						CPUs   string `json:"cpus"`
					} `json:"limits"`
				} `json:"resources"`
			} `json:"deploy"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	required := regexp.MustCompile(`^\$\{[A-Z0-9_]+:\?[^}]*\}$`)
	for name, s := range c.Services {
		if l := s.Deploy.Resources.Limits; l.Memory == "" || l.CPUs == "" {
			t.Errorf("service %s: no deploy.resources.limits (memory %q, cpus %q)", name, l.Memory, l.CPUs)
		}
		for k, v := range s.Environment {
			if !strings.Contains(k, "PASSWORD") && !strings.Contains(k, "TOKEN") && !strings.Contains(k, "SECRET") {
				continue
			}
			if !required.MatchString(v) {
				t.Errorf("service %s: %s = %q: a secret must be ${VAR:?message}, required from the environment", name, k, v)
			}
		}
	}
}
