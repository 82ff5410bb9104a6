package picture

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden hashes under testdata/golden")

// goldenCases are the inputs whose exact outputs are pinned.
func goldenCases(t *testing.T) []struct {
	name string
	data []byte
} {
	var cases []struct {
		name string
		data []byte
	}
	add := func(name string, data []byte) {
		cases = append(cases, struct {
			name string
			data []byte
		}{name, data})
	}
	for o := 1; o <= 8; o++ {
		add(fmt.Sprintf("jpeg-orientation-%d", o), orientedJPEG(t, 320, 240, o, binary.LittleEndian))
		add(fmt.Sprintf("webp-orientation-%d", o), orientedWebP(t, o))
	}
	add("jpeg-orientation-6-scaled", orientedJPEG(t, 2720, 2040, 6, binary.BigEndian))
	add("jpeg-photo-scaled", encodeJPEGTest(t, photo(2700, 2000), 90))
	add("jpeg-progressive", readFixture(t, "quad-progressive.jpg"))
	add("jpeg-progressive-photo", readFixture(t, "jpeg/progressive.jpg"))
	add("jpeg-cmyk", readFixture(t, "quad-cmyk.jpg"))
	add("jpeg-gray", readFixture(t, "jpeg/gray.jpg"))
	add("jpeg-411", readFixture(t, "jpeg/sample-411.jpg"))
	add("png-alpha", pngBytes(t, alphaBands()))
	add("webp-lossy", readFixture(t, "webp/quad-lossy.webp"))
	add("webp-lossless-alpha", readFixture(t, "webp/alpha-lossless.webp"))
	add("webp-lossy-alpha", readFixture(t, "webp/alpha-lossy.webp"))
	add("gif-first-frame", twoFrameGIF(t, 50, 40))
	return cases
}

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestGolden pins the exact output bytes of a set of inputs. After an
// intended change, look at the new outputs and run
//
//	go test ./picture -run TestGolden -args -update
func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	for _, c := range goldenCases(t) {
		res, err := Process(c.data, Limits{})
		if err != nil {
			t.Errorf("golden %s: %v", c.name, err)
			continue
		}
		got := fmt.Sprintf("full sha256:%s\npreview sha256:%s\n", hashOf(res.Full), hashOf(res.Preview))
		path := filepath.Join(dir, c.name+".txt")
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("golden %s: %v (create it with -update)", c.name, err)
			continue
		}
		if string(want) != got {
			out, _ := os.MkdirTemp("", "picture-golden-")
			_ = os.WriteFile(filepath.Join(out, c.name+".jpg"), res.Full, 0o644)
			_ = os.WriteFile(filepath.Join(out, c.name+"-preview.jpg"), res.Preview, 0o644)
			t.Errorf("golden %s: output changed\n got: %s\nwant: %s\nnew outputs written to %s",
				c.name, strings.ReplaceAll(got, "\n", " "), strings.ReplaceAll(string(want), "\n", " "), out)
		}
	}
}
