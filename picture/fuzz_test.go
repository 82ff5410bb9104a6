package picture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"testing"
	"time"
)

// FuzzProcess feeds arbitrary bytes to Process. It must not panic, must
// return an error matching exactly one sentinel, or two JPEGs of the
// promised sizes. The seed corpus is under testdata/fuzz/FuzzProcess.
//
// Each successful input costs a few milliseconds (two JPEG encodes), so
// keep the minimisation of new inputs short:
//
//	go test ./picture -run '^$' -fuzz '^FuzzProcess$' -fuzztime 60s -fuzzminimizetime 10x
func FuzzProcess(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure too: with this limit any input takes well
		// under a second.
		watchdog := time.AfterFunc(20*time.Second, func() {
			panic(fmt.Sprintf("Process has run for 20s on %d bytes: %q", len(data), data))
		})
		defer watchdog.Stop()
		res, err := Process(data, Limits{MaxPixels: 4_000_000})
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q matches %d sentinels", err, n)
			}
			if res.Full != nil || res.Preview != nil {
				t.Fatal("result with an error")
			}
			return
		}
		if f, _ := Sniff(data); f != res.Source {
			t.Fatalf("source %q, sniffed %q", res.Source, f)
		}
		for _, o := range []struct {
			b    []byte
			size int
		}{{res.Full, FullSize}, {res.Preview, PreviewSize}} {
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(o.b))
			if err != nil || cfg.Width != o.size || cfg.Height != o.size {
				t.Fatalf("output %+v, %v; want %d square", cfg, err, o.size)
			}
		}
		if res.Width <= 0 || res.Height <= 0 || int64(res.Width)*int64(res.Height) > 4_000_000 {
			t.Fatalf("size %dx%d", res.Width, res.Height)
		}
	})
}

// FuzzJPEGScaled drives the built-in JPEG decoder alone, which is much
// faster than going through Process, at every scale. It must not panic,
// and what it returns must cover the centre square it promises.
func FuzzJPEGScaled(f *testing.F) {
	for _, name := range []string{"sample-422", "sample-410", "restart-mcus", "gray", "optimized", "progressive", "progressive-restart", "progressive-gray"} {
		f.Add(readFixture(f, "jpeg/"+name+".jpg"), uint16(16))
	}
	f.Add(encodeJPEGTest(f, photo(40, 24), 50), uint16(3))
	f.Add(readFixture(f, "quad-cmyk.jpg"), uint16(16))
	f.Fuzz(func(t *testing.T, data []byte, minSide uint16) {
		if len(data) < 3 || data[0] != 0xFF || data[1] != 0xD8 {
			return
		}
		watchdog := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("the scaled decoder has run for 10s on %d bytes: %q", len(data), data))
		})
		defer watchdog.Stop()
		var fr jpegFrame
		pos, err := fr.parse(data)
		if err != nil {
			return
		}
		// Keep the work bounded like Process does.
		if fr.width*fr.height > 4_000_000 {
			return
		}
		p, canvas, err := fr.decodeAny(data, pos, scaleFor(min(fr.width, fr.height), int(minSide)))
		if err != nil {
			return
		}
		if !centreSquare(canvas).In(p.rect) {
			t.Fatalf("planes cover %v, not the centre square of %v", p.rect, canvas)
		}
		if len(p.y) != p.yStride*p.rect.Dy() || p.yStride != p.rect.Dx() {
			t.Fatalf("luma plane %d bytes, stride %d, for %v", len(p.y), p.yStride, p.rect)
		}
		if p.cb != nil && (len(p.cb) != len(p.cr) || len(p.cb) != p.cStride*((p.rect.Dy()+p.fy-1)/p.fy)) {
			t.Fatalf("chroma planes %d/%d bytes, stride %d, for %v / %dx%d", len(p.cb), len(p.cr), p.cStride, p.rect, p.fx, p.fy)
		}
		// And the rest of the pipeline takes it.
		sq := centreSquare(canvas)
		k := max(1, sq.Dx()/FullSize)
		m := sq.Dx() / k
		shrinkPlanar(p, image.Rect(sq.Min.X, sq.Min.Y, sq.Min.X+m*k, sq.Min.Y+m*k), k)
	})
}
