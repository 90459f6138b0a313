package plan

import (
	"fmt"

	"github.com/nodeinit/nodeinit/cmdline"
)

// The PCRs a boot measures into (package measure says why these two).
const (
	PCRPhase    = 11 // boot phases, as systemd-pcrphase writes them
	PCRNodeinit = 23 // nodeinit's own record of the boot
)

// Measurement is one thing the boot extends into a PCR before it acts on it,
// as the plan shows it.
type Measurement struct {
	PCR  int    `json:"pcr"`
	What string `json:"what"`
}

// measurements lists what a boot with a TPM measures for bp, in order. The
// engine's own network and probe steps, and enter-initrd, come before the plan.
func measurements(bp *Blueprint, p *cmdline.Params) []Measurement {
	out := []Measurement{
		{PCRPhase, "enter-initrd"},
		{PCRNodeinit, "step " + StageNetwork},
		{PCRNodeinit, "step " + StageProbe},
		{PCRNodeinit, "action " + string(bp.Action)},
		{PCRNodeinit, "plan digest (SHA-256 of this plan's JSON)"},
	}
	if bp.Image != nil {
		out = append(out, Measurement{PCRNodeinit, fmt.Sprintf("image %s %s (manifest SHA-256)", bp.Image.Name, bp.Image.Version)})
	} else if bp.Slot != "" {
		out = append(out, Measurement{PCRNodeinit, "image of slot " + bp.Slot + " (manifest SHA-256 on the ESP)"})
	}
	if bp.Slot != "" {
		out = append(out, Measurement{PCRNodeinit, "slot " + bp.Slot})
	}
	if !bp.DryRun {
		for _, s := range bp.Steps {
			out = append(out, Measurement{PCRNodeinit, "step " + s.Name + ", before it runs"})
		}
	}
	switch bp.Handoff {
	case HandoffSwitchRoot:
		out = append(out, Measurement{PCRNodeinit, "step " + StageSwitchRoot}, Measurement{PCRPhase, "leave-initrd"})
	case HandoffReboot:
		out = append(out, Measurement{PCRNodeinit, "step " + StageReboot})
	}
	out = append(out, Measurement{PCRNodeinit, "on a failure, the failing stage"})
	if p.Node.TPM == cmdline.TPMRequired {
		out = append(out, Measurement{PCRNodeinit, "nodeinit.tpm=required: a TPM failure stops the boot"})
	}
	return out
}
