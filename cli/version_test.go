package cli

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestReadBuild(t *testing.T) {
	t.Parallel()
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name          string
		info          *debug.BuildInfo
		ok            bool
		linked, built string
		want          build
	}{
		{"no build information", nil, false, "dev", "",
			build{"dev", "unknown", "unknown", "unknown", runtime.Version() + platform}},
		{"local build without VCS stamping", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"},
			Settings: settings("GOOS", "plan9", "GOARCH", "arm")}, true, "dev", "",
			build{"dev", "unknown", "unknown", "unknown", "go1.99 plan9/arm"}},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64", "vcs.revision", "abc123", "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false")},
			true, "dev", "", build{"dev", "abc123", "2026-01-02T03:04:05Z", "unknown", "go1.99 linux/amd64"}},
		{"modified checkout", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.0.0-20260102030405-abc123+dirty"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64", "vcs.revision", "abc123", "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "true")},
			true, "dev", "", build{"v0.0.0-20260102030405-abc123+dirty", "abc123-dirty", "2026-01-02T03:04:05Z", "unknown", "go1.99 linux/amd64"}},
		{"go install module@version", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.2.3"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64")}, true, "dev", "",
			build{"v1.2.3", "unknown", "unknown", "unknown", "go1.99 linux/amd64"}},
		{"release build: what was linked wins", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.2.3"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64", "vcs.revision", "abc123", "vcs.modified", "false")},
			true, "v1.2.4", "2026-02-03T00:00:00Z", build{"v1.2.4", "abc123", "unknown", "2026-02-03T00:00:00Z", "go1.99 linux/amd64"}},
		{"modified without a revision is no commit", &debug.BuildInfo{Settings: settings("vcs.modified", "true")}, true, "dev", "",
			build{"dev", "unknown", "unknown", "unknown", runtime.Version() + platform}},
	} {
		if got := readBuild(tc.info, tc.ok, tc.linked, tc.built); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}
