package nodeconfig

import (
	"fmt"
	"path/filepath"

	"github.com/nodeinit/nodeinit/nodeconfig/spec"
)

// Interface is one network interface to configure with systemd-networkd (see spec.Interface).
type Interface = spec.Interface

// Config is the node configuration given on the kernel command line (see spec.Config, which
// also holds its validation and rendering).
type Config = spec.Config

// Seeded file paths in the node's root, and the admin user's name (see package spec).
const (
	HostnamePath   = spec.HostnamePath
	NetworkDir     = spec.NetworkDir
	ResolvedPath   = spec.ResolvedPath
	TimesyncdPath  = spec.TimesyncdPath
	SSHDPath       = spec.SSHDPath
	ManagementPath = spec.ManagementPath
	MonitoringPath = spec.MonitoringPath
	ShadowDir      = spec.ShadowDir
	AdminUser      = spec.AdminUser
)

// Seed validates c and writes its files into the config directory (each at
// its path in the node's root, see Config.Paths), then records every file in the
// persisted list. Nothing is written when c is invalid. Password hashes go
// only into 0600 shadow fragments and never into an error.
func Seed(configDir string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("seed config: %w", err)
	}
	var written []string
	for _, f := range c.Files() {
		if err := writeFileAtomic(filepath.Join(configDir, f.Path), []byte(f.Content), osMode(f.Mode)); err != nil {
			return fmt.Errorf("seed config: write %s: %w", f.Path, err)
		}
		written = append(written, f.Path)
	}
	if err := addPersisted(configDir, written...); err != nil {
		return fmt.Errorf("seed config: %w", err)
	}
	return nil
}
