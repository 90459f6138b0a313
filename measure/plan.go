package measure

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nodeinit/nodeinit/plan"
)

// Image names the image a boot installs or boots: its manifest's SHA-256 and
// its version. A zero Image is not measured.
type Image struct {
	ManifestSHA256 string
	Version        string
}

// PlanDigest is the SHA-256 of the plan's JSON, the digest nodeinit measures.
func PlanDigest(bp *plan.Blueprint) (string, error) {
	b, err := json.Marshal(bp)
	if err != nil {
		return "", fmt.Errorf("encode plan: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// PlanStrings are what measuring a plan extends into PCRNodeinit, in order:
// the action, the plan's digest, the image and the slot.
func PlanStrings(bp *plan.Blueprint, img Image) ([]string, error) {
	d, err := PlanDigest(bp)
	if err != nil {
		return nil, err
	}
	out := []string{PrefixAction + string(bp.Action), PrefixPlan + d}
	if img.ManifestSHA256 != "" {
		out = append(out, ImageString(img.ManifestSHA256, img.Version))
	}
	if bp.Slot != "" {
		out = append(out, PrefixSlot+bp.Slot)
	}
	return out, nil
}

// Plan measures the plan before its first step runs. A dry run is measured
// too: it is what this boot did.
func (m *Measurer) Plan(bp *plan.Blueprint, img Image) error {
	ss, err := PlanStrings(bp, img)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if err := m.Measure(s); err != nil {
			return err
		}
	}
	return nil
}
