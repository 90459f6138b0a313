package plan

import (
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/operr"
)

// spanningVG is oVirt's HostVG spread over two disks: Data has extents on both.
const spanningVG = `HostVG {
id = "vgvgvg-0000-0000-0000-0000-0000-000000"
seqno = 7
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
extent_size = 8192
max_lv = 0
max_pv = 0
physical_volumes {
pv0 {
id = "pvaaaa-0000-0000-0000-0000-0000-000001"
device = "/dev/nvme0n1"
status = ["ALLOCATABLE"]
pe_start = 2048
pe_count = 100
}
pv1 {
id = "pvbbbb-0000-0000-0000-0000-0000-000002"
device = "/dev/nvme1n1"
status = ["ALLOCATABLE"]
pe_start = 2048
pe_count = 100
}
}
logical_volumes {
Data {
id = "lvdata-0000-0000-0000-0000-0000-000003"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 2
segment1 {
start_extent = 0
extent_count = 50
type = "striped"
stripe_count = 1
stripes = ["pv0", 0]
}
segment2 {
start_extent = 50
extent_count = 50
type = "striped"
stripe_count = 1
stripes = ["pv1", 0]
}
}
}
}
`

// TestRefuseWipeOfAnLVThatSpansDisks: reinstalling onto one disk of a volume
// group whose LV also lives on another disk is refused in the plan, naming the
// LV and both disks; naming both disks lets it through.
func TestRefuseWipeOfAnLVThatSpansDisks(t *testing.T) {
	f := spanningFacts(t, disk.ContentForeign, "")
	p, err := cmdline.Parse("reinstall storage_init=/dev/nvme0n1 nodeinit.wipe=S5GXNF0R100001")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Plan(p, f)
	d := operr.Describe(err)
	if err == nil || !strings.Contains(d.Message, "HostVG/Data") || !strings.Contains(d.Message, "/dev/nvme1n1") || d.Fix == "" {
		t.Fatalf("plan = %v (%+v), want a refusal naming HostVG/Data and /dev/nvme1n1", err, d)
	}
	f.Disks[1].PVs = nil
	f.Disks[0].PVs[0].VG = nil
	if _, err := Plan(p, f); err != nil {
		t.Fatalf("without the spanning LV the reinstall is refused: %v", err)
	}
}

// spanningFacts are two NVMe disks that are the two PVs of spanningVG, with
// the content class and the LVM signature's VG label given.
func spanningFacts(t *testing.T, content disk.ContentClass, vgLabel string) *Facts {
	t.Helper()
	vg, err := disk.ParseVGMetadata(spanningVG)
	if err != nil {
		t.Fatal(err)
	}
	f, err := loadFacts("../testdata/facts/two-identical.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Image = &ImageFacts{Source: "/b", Name: "node", Version: "1.0", Signed: true}
	for i, uuid := range []string{"pvaaaa-0000-0000-0000-0000-0000-000001", "pvbbbb-0000-0000-0000-0000-0000-000002"} {
		d := &f.Disks[i]
		d.Content = content
		d.Signatures = []disk.Signature{{Type: disk.SigLVM, Label: vgLabel}}
		d.PVs = []disk.PV{{UUID: uuid, Size: d.SizeBytes, VG: vg}}
	}
	return f
}
