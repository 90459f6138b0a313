package disk

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
)

// countingReader is a device image that counts the reads reaching it.
type countingReader struct {
	r     *bytes.Reader
	reads int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}

// TestReadCacheReadsLikeTheDevice: every read through the cache returns the
// bytes and the error a read of the device itself returns, at random
// offsets and lengths, across block boundaries and past the end, while each
// block reaches the device once.
func TestReadCacheReadsLikeTheDevice(t *testing.T) {
	img := make([]byte, 5*readCacheBlock+1234) // the last block is partial
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(rng.Uint32())
	}
	dev := &countingReader{r: bytes.NewReader(img)}
	c := NewReadCache(dev, int64(len(img)))
	for i := 0; i < 2000; i++ {
		off := rng.Int64N(int64(len(img)) + 100)
		n := rng.IntN(3 * readCacheBlock)
		got, want := make([]byte, n), make([]byte, n)
		gn, gerr := c.ReadAt(got, off)
		wn, werr := bytes.NewReader(img).ReadAt(want, off)
		if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; the device gives %d, %v", n, off, gn, gerr, wn, werr)
		}
		if werr != nil && !errors.Is(gerr, io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d) past the end: error %v, want io.EOF", n, off, gerr)
		}
	}
	if blocks := (len(img) + readCacheBlock - 1) / readCacheBlock; dev.reads != blocks {
		t.Errorf("the device saw %d reads for %d blocks: each block should be read once", dev.reads, blocks)
	}
}

// TestReadCacheLongReadsGoToTheDevice: a read of more than
// readCacheMaxBlocks blocks is not kept.
func TestReadCacheLongReadsGoToTheDevice(t *testing.T) {
	img := make([]byte, (readCacheMaxBlocks+2)*readCacheBlock)
	dev := &countingReader{r: bytes.NewReader(img)}
	c := NewReadCache(dev, int64(len(img)))
	for i := 0; i < 3; i++ {
		if _, err := c.ReadAt(make([]byte, len(img)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if dev.reads != 3 || len(c.blocks) != 0 {
		t.Errorf("3 whole-device reads: %d device reads, %d blocks kept; want 3 and 0", dev.reads, len(c.blocks))
	}
}

// TestProbeThroughTheReadCache: probing a partitioned image (a GPT with FAT32
// and ext4 made by sgdisk and mkfs) through the cache finds what probing the
// image directly finds, with far fewer reads.
func TestProbeThroughTheReadCache(t *testing.T) {
	needTools(t, "sgdisk", "mkfs.ext4", "mkfs.vfat")
	path := sparseFile(t, 256<<20)
	run(t, "sgdisk", "-n1:2048:+64M", "-t1:ef00", "-c1:NODE-ESP", "-n2:0:+64M", "-t2:8300", "-c2:node-config", path)
	esp := sparseFile(t, 64<<20)
	run(t, "mkfs.vfat", "-F", "32", "-n", "NODE-ESP", esp)
	cfg := sparseFile(t, 64<<20)
	run(t, "mkfs.ext4", "-q", "-F", "-L", "config", cfg)
	copyInto(t, esp, path, 1<<20)
	copyInto(t, cfg, path, 65<<20)
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	direct := &countingReader{r: bytes.NewReader(img)}
	want, err := ProbeDevice(direct, int64(len(img)), 512)
	if err != nil {
		t.Fatal(err)
	}
	dev := &countingReader{r: bytes.NewReader(img)}
	got, err := ProbeDevice(NewReadCache(dev, int64(len(img))), int64(len(img)), 512)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("through the cache:\n%+v\ndirectly:\n%+v", got, want)
	}
	if len(got.Partitions) != 2 || got.Partitions[0].FSType != SigVFAT || got.Partitions[1].FSType != SigExt4 {
		t.Fatalf("partitions %+v: want FAT32 and ext4", got.Partitions)
	}
	if dev.reads*4 > direct.reads {
		t.Errorf("%d device reads through the cache against %d directly: want at most a quarter", dev.reads, direct.reads)
	}
	t.Logf("%d reads directly, %d through the cache", direct.reads, dev.reads)
}

// TestPVsInThroughTheReadCache: the PVs of an already probed disk, read
// through the cache, are LVMOn's.
func TestPVsInThroughTheReadCache(t *testing.T) {
	d := pvInPartition()
	want, err := LVMOn(d, d.size, 512)
	if err != nil || len(want) != 1 {
		t.Fatalf("LVMOn: %+v, %v", want, err)
	}
	c := NewReadCache(d, d.size)
	res, err := ProbeDevice(c, d.size, 512)
	if err != nil {
		t.Fatal(err)
	}
	if got := PVsIn(c, d.size, res.Partitions); !reflect.DeepEqual(got, want) {
		t.Errorf("PVsIn through the cache %+v, LVMOn %+v", got, want)
	}
}
