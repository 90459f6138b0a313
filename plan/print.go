package plan

import (
	"fmt"
	"io"
	"strings"

	"github.com/nodeinit/nodeinit/disk"
)

// WriteText prints the plan for an operator: action, target identity, layout,
// what is destroyed and kept, and the numbered steps.
func (p *Blueprint) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "action:   %s", p.Action)
	if p.DryRun {
		b.WriteString(" (dry run: nothing will be written)")
	}
	b.WriteString("\n")
	if p.Target != nil {
		t := p.Target
		fmt.Fprintf(&b, "target:   %s  %s  %d MiB  %d-byte sectors\n", t.Path, t.Model, t.SizeBytes>>20, t.Sector)
		fmt.Fprintf(&b, "          serial=%s wwn=%s content=%s\n", orDash(t.Serial), orDash(t.WWN), t.Content)
		if t.ByID != "" {
			fmt.Fprintf(&b, "          /dev/disk/by-id/%s\n", t.ByID)
		}
	}
	for _, d := range p.Disks {
		if p.Target != nil && d.Name == p.Target.Name || p.AppDataOf(d.Name) != nil {
			continue
		}
		fmt.Fprintf(&b, "disk:     %s  %s  serial=%s\n", d.Path, d.Model, orDash(d.Serial))
	}
	if p.Image != nil {
		trust := "unsigned"
		switch {
		case p.Image.Signed:
			trust = "signature verified"
		case p.Image.Pinned:
			trust = "sha256 pinned"
		}
		fmt.Fprintf(&b, "image:    %s %s from %s (%s)\n", p.Image.Name, p.Image.Version, p.Image.Source, trust)
	}
	if p.Slot != "" {
		fmt.Fprintf(&b, "slot:     %s\n", p.Slot)
	}
	if p.Firmware != "" {
		fmt.Fprintf(&b, "firmware: %s (GRUB, boot counting in grubenv)\n", p.Firmware)
	}
	if p.Layout != nil {
		b.WriteString("layout:\n")
		for _, ps := range p.Layout.Partitions {
			if ps.IsBIOSBoot() {
				fmt.Fprintf(&b, "          %-13s %8d KiB at %8d KiB  GRUB core.img\n", ps.Name, ps.Size>>10, ps.Start>>10)
				continue
			}
			fmt.Fprintf(&b, "          %-13s %8d MiB at %8d MiB  %s\n", ps.Name, ps.Size>>20, ps.Start>>20, ps.FS)
		}
		if p.Layout.MinDiskSize > 0 {
			fmt.Fprintf(&b, "          minimum disk size for this layout: %d MiB\n", p.Layout.MinDiskSize>>20)
		}
	}
	for _, a := range p.AppData {
		t := a.Target
		fmt.Fprintf(&b, "app-data: disk %d, mounted on %s: %s  %s  %d MiB  %d-byte sectors\n", a.Index, a.Mount, t.Path, t.Model, t.SizeBytes>>20, t.Sector)
		fmt.Fprintf(&b, "          serial=%s wwn=%s content=%s\n", orDash(t.Serial), orDash(t.WWN), t.Content)
		for _, ps := range a.Layout.Partitions {
			kept := ""
			if ps.Name == a.Keep {
				kept = "  (kept)"
			}
			fmt.Fprintf(&b, "          %-13s %8d MiB at %8d MiB  %s%s\n", ps.Name, ps.Size>>20, ps.Start>>20, ps.FS, kept)
		}
		if free := a.Layout.DiskSize - lastEnd(a.Layout) - disk.MiB; free >= disk.MiB {
			fmt.Fprintf(&b, "          %-13s %8d MiB at %8d MiB  left unpartitioned\n", "(free)", free>>20, lastEnd(a.Layout)>>20)
		}
		fmt.Fprintf(&b, "          minimum disk size for this layout: %d MiB\n", a.Layout.MinDiskSize>>20)
	}
	for _, d := range p.Destroys {
		fmt.Fprintf(&b, "DESTROYS: %s\n", d)
	}
	for _, k := range p.Keeps {
		fmt.Fprintf(&b, "keeps:    %s\n", k)
	}
	b.WriteString("steps:\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "  %d. %-14s %s\n", i+1, s.Name, s.Description)
	}
	fmt.Fprintf(&b, "then:     %s\n", p.Handoff)
	for _, m := range p.Measures {
		fmt.Fprintf(&b, "measures: PCR %d  %s\n", m.PCR, m.What)
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(&b, "warning:  %s\n", wn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lastEnd is the first byte after the layout's last partition.
func lastEnd(l disk.Layout) int64 {
	if len(l.Partitions) == 0 {
		return disk.MiB
	}
	return l.Partitions[len(l.Partitions)-1].End()
}
