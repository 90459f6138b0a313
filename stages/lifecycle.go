package stages

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// Blessing a new slot. An upgrade's loader entry counts boots (node-b+3.conf); the
// node OS marks a boot good once it is healthy, and an entry that runs out of tries
// falls behind the last good one, so the old slot boots and nodeinit records the rollback.
//   - Images without systemd run `nodeinit bless` (or `nodeinit bless -bad`) from their
//     health check; it renames the entry and records the slot good in the ledger.
//   - Images with systemd can rely on systemd-bless-boot.service instead: it renames the
//     same Type #1 entry once boot-complete.target is reached (order health checks
//     before it with RequiredBy=boot-complete.target). The ESP must be mounted where
//     systemd finds it (/efi or /boot, or bind /run/nodeinit/esp there); the next boot's
//     initramfs sees the blessed entry and records the slot good in the ledger.

// Ledger actions the lifecycle stages record besides install, upgrade, boot and rollback.
const (
	// ActionMigrating is recorded after the config snapshot and before the first
	// migration runs: from then on the config no longer matches the running version.
	ActionMigrating = "migrate-config"
	// ActionInterrupted is recorded by the boot that finds an upgrade cut short.
	ActionInterrupted = "upgrade-interrupted"
)

// Interruption is an upgrade that stopped (power cut, crash, operator) before its
// loader entry was written, found by the next boot of the old slot.
type Interruption struct {
	Slot    string // the slot the upgrade was writing
	Version string // the version it was writing
	// Migrated is true when migrations may have run: the booted version's config
	// snapshot must be restored.
	Migrated bool
}

// DetectInterruptedUpgrade reports an upgrade of the slot other than booted that never
// reached its loader entry: the ledger has that slot writing or ready, and the ESP has
// no entry for it. The upgrade removes the slot's old entry before writing it, so an
// entry that exists belongs to a finished upgrade (boot counting then decides).
func DetectInterruptedUpgrade(booted string, entries []boot.EntryState, l *boot.Ledger) *Interruption {
	if l == nil {
		return nil
	}
	other := plan.OtherSlot(booted)
	rec := l.Slots[other]
	if rec == nil || (rec.State != boot.SlotWriting && rec.State != boot.SlotReady) {
		return nil
	}
	for _, e := range entries {
		if e.Slot == other {
			return nil
		}
	}
	in := &Interruption{Slot: other, Version: rec.Version}
	in.Migrated = l.Last != nil && l.Last.Action == ActionMigrating && l.Last.Slot == other
	return in
}

// LocalBootTriggerURL substitutes @HOSTNAME@ (oVirt Node's placeholder) in a
// local_boot_trigger URL and adds http:// to oVirt's scheme-less HOST/PATH form.
func LocalBootTriggerURL(trigger, hostname string) string {
	u := strings.ReplaceAll(trigger, "@HOSTNAME@", url.PathEscape(hostname))
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return u
}

// FetchLocalBootTrigger GETs u until the server answers 2xx, at most attempts times
// with a growing pause, so the provisioning server stops offering the installer.
func FetchLocalBootTrigger(ctx context.Context, client *http.Client, u string, attempts int) error {
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second, CheckRedirect: image.CheckRedirect}
	}
	var last error
	for i := 0; i < max(attempts, 1); i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(i) * 500 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("local_boot_trigger %s: %w", image.RedactRawURL(u), err)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = image.WithoutURL(err)
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("HTTP %s", resp.Status)
	}
	return operr.Wrap(last, "local_boot_trigger "+image.RedactRawURL(u), "check the URL; the install itself is complete", "")
}

// SlotFromCmdline returns the last nodeinit.slot value on a kernel command line.
func SlotFromCmdline(line string) string {
	slot := ""
	for _, tok := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(tok, boot.SlotOption+"="); ok {
			slot = strings.Trim(v, `"`)
		}
	}
	return slot
}
