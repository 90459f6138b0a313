package initproc

import (
	"errors"
	"os"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/measure"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

// startMeasuring opens the TPM as nodeinit.tpm asks and measures enter-initrd,
// the first thing the initramfs does that counts. Without a TPM (or with
// nodeinit.tpm=off) the measurer measures nothing; with nodeinit.tpm=required
// a missing or failing TPM is the error returned.
func startMeasuring(p *cmdline.Params, sink stages.Sink) (*measure.Measurer, error) {
	m := &measure.Measurer{LogPath: measure.DefaultLogPath, Required: p.Node.TPM == cmdline.TPMRequired,
		Report: func(msg string) {
			sink.Emit(stages.Event{Time: time.Now(), Stage: plan.StageProbe, Kind: stages.EventInfo, Message: "measured boot: " + msg})
		}}
	if p.Node.TPM == cmdline.TPMOff {
		return nil, nil
	}
	tpm, err := openTPM()
	switch {
	case errors.Is(err, measure.ErrNoTPM):
	case err != nil:
		m.Report("open " + measure.DefaultDevice + ": " + err.Error())
		if m.Required {
			return nil, err
		}
	default:
		m.TPM = tpm
	}
	return m, m.Phase(measure.PhaseEnterInitrd)
}

// openTPM opens the kernel's TPM resource manager, waiting a little for its
// device node when the kernel has found a TPM but devtmpfs has not shown it yet.
func openTPM() (measure.TPM, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		d, err := measure.Open(measure.DefaultDevice)
		if !errors.Is(err, measure.ErrNoTPM) || time.Now().After(deadline) || !exists("/sys/class/tpm/tpm0") {
			if err != nil {
				return nil, err
			}
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// measuredImage is the image the plan installs or boots, for the measurement:
// the bundle's manifest, or the booted slot's manifest on the ESP.
func measuredImage(bp *plan.Blueprint, m *stages.Machine) measure.Image {
	if m.Bundle != nil && bp.Action != cmdline.ActionBoot {
		return measure.Image{ManifestSHA256: m.Bundle.ManifestSHA256, Version: m.Bundle.Manifest.Version}
	}
	if in := m.Facts.Install; in != nil && bp.Slot != "" {
		s := in.Slots[bp.Slot]
		return measure.Image{ManifestSHA256: s.Manifest, Version: s.Version}
	}
	return measure.Image{}
}
