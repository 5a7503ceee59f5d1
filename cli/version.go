package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
)

// buildTime is when the binary was built, for a release build to set with
// -ldflags "-X github.com/switchboard-dev/switchboard/cli.buildTime=...";
// go build itself records no build time.
var buildTime string

// unknown is what version prints for what the binary does not record.
const unknown = "unknown"

// build is what a binary knows about how it was built.
type build struct {
	Version    string // the module's version, or switchboard.Version
	Commit     string // VCS revision, with "-dirty" when the tree had changes
	CommitTime string // the revision's commit time
	BuildTime  string
	Go         string // toolchain and platform
}

// readBuild describes a binary from its build information (ok false when
// it has none) and the version and build time set at link time. What is
// not recorded is "unknown": go build records the VCS revision only when
// it builds in a checkout with VCS stamping on (-buildvcs), and a module
// version only when built as a dependency (go install module@version).
func readBuild(info *debug.BuildInfo, ok bool, linkedVersion, linkedBuildTime string) build {
	b := build{Version: linkedVersion, Commit: unknown, CommitTime: unknown, BuildTime: unknown,
		Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if linkedBuildTime != "" {
		b.BuildTime = linkedBuildTime
	}
	if !ok {
		return b
	}
	// A version set at link time was set on purpose: it wins.
	if v := info.Main.Version; linkedVersion == "dev" && v != "" && v != "(devel)" {
		b.Version = v
	}
	var goos, goarch, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			modified = s.Value
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if b.Commit != unknown && modified == "true" {
		b.Commit += "-dirty"
	}
	if info.GoVersion != "" && goos != "" && goarch != "" {
		b.Go = info.GoVersion + " " + goos + "/" + goarch
	}
	return b
}

func (b build) String() string {
	return fmt.Sprintf("switchboard %s\ncommit:     %s\ncommitted:  %s\nbuilt:      %s\ngo:         %s\n",
		b.Version, b.Commit, b.CommitTime, b.BuildTime, b.Go)
}

func (c *CLI) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS commit and toolchain of this binary",
		Long: `Version prints the module version (or the one set at release), the VCS
commit it was built from ("-dirty" when the checkout had changes) and that
commit's time, the build time when the release set one, and the Go toolchain.
What the binary does not record is printed as "unknown".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, ok := debug.ReadBuildInfo()
			_, err := fmt.Fprint(c.Stdout, readBuild(info, ok, switchboard.Version, buildTime))
			return err
		},
	}
}
