package picture

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"runtime"
	"testing"
)

// rawPNG builds a PNG from rows of samples (without filter bytes),
// filtering row y with filter type filters[y%len(filters)].
type rawPNG struct {
	w, h         int
	depth, ctype byte
	interlace    byte
	plte, trns   []byte
	rows         [][]byte
	filters      []byte
	extra        []byte // chunks to put before IEND
}

func pngChunkBytes(id string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, id...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

func (r rawPNG) bytes(t testing.TB) []byte {
	t.Helper()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(r.w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(r.h))
	ihdr = append(ihdr, r.depth, r.ctype, 0, 0, r.interlace)
	out := append([]byte("\x89PNG\r\n\x1a\n"), pngChunkBytes("IHDR", ihdr)...)
	if r.plte != nil {
		out = append(out, pngChunkBytes("PLTE", r.plte)...)
	}
	if r.trns != nil {
		out = append(out, pngChunkBytes("tRNS", r.trns)...)
	}
	channels := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[r.ctype]
	bpp := max(channels*int(r.depth)/8, 1)
	var raw bytes.Buffer
	prev := make([]byte, len(r.rows[0]))
	if r.interlace == 1 {
		// Adam7 passes, unfiltered; whole-byte pixels only.
		for _, p := range [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
			if p[0] >= r.w {
				continue
			}
			for y := p[1]; y < r.h; y += p[3] {
				raw.WriteByte(0)
				for x := p[0]; x < r.w; x += p[2] {
					raw.Write(r.rows[y][x*bpp : (x+1)*bpp])
				}
			}
		}
		r.rows = nil
	}
	for y, row := range r.rows {
		ft := byte(0)
		if len(r.filters) > 0 {
			ft = r.filters[y%len(r.filters)]
		}
		raw.WriteByte(ft)
		raw.Write(filterRow(ft, row, prev, bpp))
		prev = row
	}
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	zw.Write(raw.Bytes())
	zw.Close()
	// Split the stream over two IDAT chunks.
	zb := z.Bytes()
	out = append(out, pngChunkBytes("IDAT", zb[:len(zb)/2])...)
	out = append(out, pngChunkBytes("IDAT", zb[len(zb)/2:])...)
	out = append(out, r.extra...)
	return append(out, pngChunkBytes("IEND", nil)...)
}

// filterRow applies a PNG filter (the inverse of unfilter).
func filterRow(ft byte, cur, prev []byte, bpp int) []byte {
	out := make([]byte, len(cur))
	left := func(i int) int {
		if i >= bpp {
			return int(cur[i-bpp])
		}
		return 0
	}
	upLeft := func(i int) int {
		if i >= bpp {
			return int(prev[i-bpp])
		}
		return 0
	}
	for i := range cur {
		a, b, c := left(i), int(prev[i]), upLeft(i)
		var p int
		switch ft {
		case 1:
			p = a
		case 2:
			p = b
		case 3:
			p = (a + b) / 2
		case 4:
			pa, pb, pc := abs(b-c), abs(a-c), abs(a+b-2*c)
			switch {
			case pa <= pb && pa <= pc:
				p = a
			case pb <= pc:
				p = b
			default:
				p = c
			}
		}
		out[i] = cur[i] - byte(p)
	}
	return out
}

// samples makes deterministic rows of samples for w pixels of a type,
// using every sample value range and, for tRNS tests, hitting the
// transparent value often.
func samples(w, h int, depth, ctype byte, hit []byte) [][]byte {
	channels := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
	rowBytes := (channels*int(depth)*w + 7) / 8
	rng := uint32(7)
	rows := make([][]byte, h)
	for y := range rows {
		row := make([]byte, rowBytes)
		for i := range row {
			rng ^= rng << 13
			rng ^= rng >> 17
			rng ^= rng << 5
			row[i] = byte(rng)
		}
		if hit != nil && depth >= 8 {
			// Every fifth pixel is the transparent colour.
			px := channels * int(depth) / 8
			for x := 0; x < w; x += 5 {
				copy(row[x*px:], hit)
			}
		}
		rows[y] = row
	}
	return rows
}

func TestPNGStreamMatchesImagePNG(t *testing.T) {
	plte := make([]byte, 3*200)
	for i := range plte {
		plte[i] = byte(i * 37)
	}
	type tc struct {
		depth, ctype byte
		plte, trns   []byte
		hit          []byte
	}
	var cases []tc
	for _, d := range []byte{1, 2, 4, 8, 16} {
		cases = append(cases, tc{depth: d, ctype: 0})
	}
	cases = append(cases,
		tc{depth: 8, ctype: 0, trns: []byte{0, 77}, hit: []byte{77}},
		tc{depth: 4, ctype: 0, trns: []byte{0, 9}},
		tc{depth: 1, ctype: 0, trns: []byte{0, 1}},
		tc{depth: 16, ctype: 0, trns: []byte{1, 2}, hit: []byte{1, 2}},
		tc{depth: 8, ctype: 2},
		tc{depth: 16, ctype: 2},
		tc{depth: 8, ctype: 2, trns: []byte{0, 10, 0, 20, 0, 30}, hit: []byte{10, 20, 30}},
		tc{depth: 16, ctype: 2, trns: []byte{0, 10, 0, 20, 0, 30}, hit: []byte{0, 10, 0, 20, 0, 30}},
		tc{depth: 8, ctype: 4},
		tc{depth: 16, ctype: 4},
		tc{depth: 8, ctype: 6},
		tc{depth: 16, ctype: 6},
	)
	for _, d := range []byte{1, 2, 4, 8} {
		cases = append(cases, tc{depth: d, ctype: 3, plte: plte[:3*min(200, 1<<d)]})
	}
	cases = append(cases, tc{depth: 8, ctype: 3, plte: plte, trns: []byte{0, 128, 255, 3}})
	for _, c := range cases {
		for _, size := range []image.Point{{37, 23}, {1500, 1290}} {
			if size.X > 100 && (c.depth < 8 || c.trns != nil) {
				continue // the large size is for the shrink, once per layout
			}
			name := fmt.Sprintf("type%d-depth%d-trns%v-%dx%d", c.ctype, c.depth, c.trns != nil, size.X, size.Y)
			t.Run(name, func(t *testing.T) {
				r := rawPNG{w: size.X, h: size.Y, depth: c.depth, ctype: c.ctype, plte: c.plte, trns: c.trns,
					rows: samples(size.X, size.Y, c.depth, c.ctype, c.hit), filters: []byte{0, 1, 2, 3, 4},
					extra: pngChunkBytes("tEXt", []byte("Comment\x00hello"))}
				data := r.bytes(t)
				img, err := png.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				info, err := parsePNGInfo(data)
				if err != nil {
					t.Fatal(err)
				}
				box, k := shrinkPlan(img.Bounds())
				got, err := decodePNGShrink(data, info, box, k)
				if err != nil {
					t.Fatal(err)
				}
				want := shrinkImage(img, box, k, ycc{})
				if !bytes.Equal(got.pix, want.pix) {
					for i := range got.pix {
						if got.pix[i] != want.pix[i] {
							t.Fatalf("byte %d (pixel %d,%d) is %d, want %d", i, i/3%got.w, i/3/got.w, got.pix[i], want.pix[i])
						}
					}
				}
			})
		}
	}
}

// TestPNGStreamGivesUp: what the streaming decoder does not take is left
// to image/png, which gives the same verdict as before.
func TestPNGStreamGivesUp(t *testing.T) {
	good := rawPNG{w: 40, h: 30, depth: 8, ctype: 2, rows: samples(40, 30, 8, 2, nil)}
	goodBytes := good.bytes(t)
	badCRC := append([]byte{}, goodBytes...)
	badCRC[len(badCRC)-20] ^= 1 // inside the last IDAT
	short := good
	short.rows = short.rows[:20]
	short.h = 30
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"bad crc", badCRC},
		{"too few rows", short.bytes(t)},
		{"no IEND", goodBytes[:len(goodBytes)-12]},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := parsePNGInfo(c.data)
			if err == nil {
				box, k := shrinkPlan(image.Rect(0, 0, info.width, info.height))
				if _, err := decodePNGShrink(c.data, info, box, k); err == nil {
					t.Fatal("the streaming decoder took it")
				}
			}
			_, err = Process(c.data, Limits{})
			_, stdErr := png.Decode(bytes.NewReader(c.data))
			if (err == nil) != (stdErr == nil) {
				t.Fatalf("Process: %v; image/png: %v", err, stdErr)
			}
			if err != nil {
				matchesExactly(t, err, ErrUnsupported)
			}
		})
	}
	// An interlaced PNG is not streamed, but decodes to the same
	// picture as the same pixels not interlaced.
	info, err := parsePNGInfo(goodBytes)
	if err != nil || info.interlaced {
		t.Fatalf("%v %v", info, err)
	}
	interlaced := good
	interlaced.interlace = 1
	ilBytes := interlaced.bytes(t)
	info, err = parsePNGInfo(ilBytes)
	if err != nil || !info.interlaced {
		t.Fatalf("%v %v", info, err)
	}
	box, k := shrinkPlan(image.Rect(0, 0, info.width, info.height))
	if _, err := decodePNGShrink(ilBytes, info, box, k); err == nil {
		t.Fatal("the streaming decoder took an interlaced PNG")
	}
	want, err := Process(goodBytes, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Process(ilBytes, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Full, want.Full) || !bytes.Equal(got.Preview, want.Preview) {
		t.Fatal("the interlaced PNG came out differently")
	}
	m := image.NewRGBA(image.Rect(0, 0, 40, 30))
	var buf bytes.Buffer
	png.Encode(&buf, m)
	if _, err := Process(buf.Bytes(), Limits{}); err != nil {
		t.Fatal(err)
	}
}

// TestPNGBombStreams is the picture from the issue: a few hundred
// kilobytes of PNG that declares a large 16-bit RGBA picture. It is
// admitted with a small estimate and decoded without holding the picture.
func TestPNGBombStreams(t *testing.T) {
	const side = 3000
	row := make([]byte, 8*side)
	rows := make([][]byte, side)
	for i := range rows {
		rows[i] = row
	}
	data := rawPNG{w: side, h: side, depth: 16, ctype: 6, rows: rows}.bytes(t)
	_, est, err := Estimate(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// The picture is 68 MiB; the estimate is the scaling buffers and a
	// few rows.
	if est > 24<<20 {
		t.Fatalf("estimate %d MiB for a picture of %d MiB", est>>20, side*side*8>>20)
	}
	b := NewBudget(est)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Process(data, Limits{Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if used := int64(after.TotalAlloc - before.TotalAlloc); used > est {
		t.Errorf("allocated %d KiB, estimate %d KiB", used>>10, est>>10)
	}
	// Fully transparent: white.
	m := decodeOut(t, res.Full, FullSize)
	if c := rgbaAt(m, 320, 320); c.R < 250 || c.G < 250 || c.B < 250 {
		t.Errorf("centre %v, want white", c)
	}
}
