package nodeconfig

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
	MachineIDPath  = spec.MachineIDPath
	NetworkDir     = spec.NetworkDir
	ResolvedPath   = spec.ResolvedPath
	TimesyncdPath  = spec.TimesyncdPath
	SSHDPath       = spec.SSHDPath
	ManagementPath = spec.ManagementPath
	MonitoringPath = spec.MonitoringPath
	ShadowDir      = spec.ShadowDir
	AdminUser      = spec.AdminUser
	// AuthorizedKeysDir holds the admin user's seeded SSH key (see spec.AuthorizedKeysDir).
	AuthorizedKeysDir = spec.AuthorizedKeysDir
)

// Seed validates c and writes its files into the config directory (each at
// its path in the node's root, see Config.Paths), then records every file in the
// persisted list. Nothing is written when c is invalid. Password hashes go
// only into 0600 shadow fragments and never into an error.
//
// The node's machine ID is one of those files. When c has none, Seed keeps the
// valid one the config directory holds already (seed-config run again after a
// power cut does not change the node's identity) and otherwise creates one
// with NewMachineID. So an install creates it, a reinstall creates a new one
// (Replace clears the config first), an upgrade keeps it (the config is
// migrated, never seeded), and a boot only binds it. A stateless boot seeds a
// tmpfs, so its machine ID is new at every boot, as systemd's own would be.
func Seed(configDir string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("seed config: %w", err)
	}
	if c.MachineID == "" {
		id, err := machineID(configDir)
		if err != nil {
			return fmt.Errorf("seed config: %w", err)
		}
		c.MachineID = id
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

// NewMachineID returns a new random machine ID: 128 bits from crypto/rand as
// 32 lower-case hexadecimal digits, marked as a version 4 UUID the way
// systemd's sd_id128_randomize marks the IDs it makes.
func NewMachineID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("machine ID: read random bytes: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:]), nil
}

// machineID is the machine ID the config directory holds, or a new one when it
// holds none or one that machine-id(5) would not accept (empty, "uninitialized").
func machineID(configDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(configDir, MachineIDPath))
	switch {
	case err == nil:
		if id := strings.TrimSuffix(string(b), "\n"); spec.ValidMachineID(id) {
			return id, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read the machine ID: %w", err)
	}
	return NewMachineID()
}
