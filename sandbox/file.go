package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/portrait-dev/portrait"
)

// fileDoc is a world file: one optional section per instance type.
type fileDoc struct {
	Comment  string     `json:"comment"`
	WhatsApp *fileWorld `json:"whatsapp"`
	MAX      *fileWorld `json:"max"`
	V3       *fileWorld `json:"v3"` // alias of "max", the typeInstance name
}

type fileWorld struct {
	Account  fileAccount   `json:"account"`
	Contacts []fileContact `json:"contacts"`
	Groups   []fileGroup   `json:"groups"`
}

type fileAccount struct {
	Phone   string `json:"phone"`
	ID      string `json:"id"`
	Linked  *bool  `json:"linked"` // default true
	Picture string `json:"picture"`
}

type fileContact struct {
	ChatID     string `json:"chatId"`
	Name       string `json:"name"`
	HasAccount *bool  `json:"hasAccount"` // default true
	Hidden     bool   `json:"hidden"`
	Fault      string `json:"fault"`
	Picture    string `json:"picture"`
}

type fileGroup struct {
	ChatID             string `json:"chatId"`
	Name               string `json:"name"`
	Role               string `json:"role"` // default "member"
	OnlyAdminsEditInfo bool   `json:"onlyAdminsEditInfo"`
	Picture            string `json:"picture"`
}

// fileSeeder seeds from the worlds of a world file, falling back to the demo
// world for types the file has no section for.
type fileSeeder struct {
	worlds map[portrait.InstanceType]World
}

func (s *fileSeeder) Seed(t portrait.InstanceType) (World, error) {
	if w, ok := s.worlds[t]; ok {
		return w.clone(true), nil
	}
	return DemoWorld(t)
}

// LoadWorldFile reads a world file (see WORLD.md) and returns a Seeder that
// seeds new instances from it. Instances of a type the file has no section
// for get the built-in demo world. Every chat id is validated for its
// section's type and every picture is read, decoded from base64 or generated
// now, so a file that loads seeds without errors. Errors name the file, the
// entry and the field, e.g.
//
//	sandbox: world file "w.json": whatsapp.contacts[1] ("123@c.us"): chatId: invalid WhatsApp chat id "123@c.us": …
func LoadWorldFile(path string) (Seeder, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: world file: %w", err)
	}
	worlds, err := parseWorldFile(raw, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("sandbox: world file %q: %w", path, err)
	}
	return &fileSeeder{worlds: worlds}, nil
}

// parseWorldFile decodes and validates a world file whose relative picture
// paths are relative to dir.
func parseWorldFile(raw []byte, dir string) (map[portrait.InstanceType]World, error) {
	var doc fileDoc
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, jsonError(raw, err, dec.InputOffset())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the top-level JSON object")
	}
	if doc.MAX != nil && doc.V3 != nil {
		return nil, errors.New(`both "max" and "v3" sections: "v3" is another name for "max", give only one`)
	}
	if doc.MAX == nil {
		doc.MAX = doc.V3
	}
	sections := []struct {
		name string
		t    portrait.InstanceType
		fw   *fileWorld
	}{
		{"whatsapp", portrait.TypeWhatsApp, doc.WhatsApp},
		{"max", portrait.TypeMAX, doc.MAX},
	}
	worlds := map[portrait.InstanceType]World{}
	for _, s := range sections {
		if s.fw == nil {
			continue
		}
		w, err := s.fw.world(s.t, dir)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", s.name, err)
		}
		worlds[s.t] = w
	}
	if len(worlds) == 0 {
		return nil, errors.New(`no "whatsapp" or "max" section`)
	}
	return worlds, nil
}

// world converts a section to a validated World of type t.
func (fw *fileWorld) world(t portrait.InstanceType, dir string) (World, error) {
	w := World{
		Type: t,
		Account: Account{
			Phone:  fw.Account.Phone,
			ID:     fw.Account.ID,
			Linked: fw.Account.Linked == nil || *fw.Account.Linked,
		},
	}
	var err error
	if w.Account.Picture, err = loadPicture(fw.Account.Picture, dir); err != nil {
		return World{}, fmt.Errorf("account: picture: %w", err)
	}
	for i, fc := range fw.Contacts {
		c := Contact{
			ChatID:     fc.ChatID,
			Name:       fc.Name,
			HasAccount: fc.HasAccount == nil || *fc.HasAccount,
			Hidden:     fc.Hidden,
			Fault:      fc.Fault,
		}
		if c.Picture, err = loadPicture(fc.Picture, dir); err != nil {
			return World{}, fmt.Errorf("contacts[%d] (%q): picture: %w", i, fc.ChatID, err)
		}
		w.Contacts = append(w.Contacts, c)
	}
	for i, fg := range fw.Groups {
		g := Group{
			ChatID:             fg.ChatID,
			Name:               fg.Name,
			Role:               fg.Role,
			OnlyAdminsEditInfo: fg.OnlyAdminsEditInfo,
		}
		if g.Role == "" {
			g.Role = RoleMember
		}
		if g.Picture, err = loadPicture(fg.Picture, dir); err != nil {
			return World{}, fmt.Errorf("groups[%d] (%q): picture: %w", i, fg.ChatID, err)
		}
		w.Groups = append(w.Groups, g)
	}
	if err := w.Validate(); err != nil {
		return World{}, err
	}
	return w, nil
}

// loadPicture resolves a world file's picture value: "" for none,
// "generated:<seed>[.png|.jpg]", a "data:" URL, "base64:<data>", or a file
// path relative to dir.
func loadPicture(v, dir string) (*Picture, error) {
	var data []byte
	switch {
	case v == "":
		return nil, nil
	case strings.HasPrefix(v, "generated:"):
		seed := strings.TrimPrefix(v, "generated:")
		format := FormatJPEG
		if s, ok := strings.CutSuffix(seed, ".png"); ok {
			seed, format = s, FormatPNG
		} else if s, ok := strings.CutSuffix(seed, ".jpg"); ok {
			seed = s
		} else if s, ok := strings.CutSuffix(seed, ".jpeg"); ok {
			seed = s
		}
		if seed == "" {
			return nil, fmt.Errorf("%q: empty seed (write e.g. \"generated:alice\")", v)
		}
		return generatedPicture(seed, format, v)
	case strings.HasPrefix(v, "data:"):
		meta, payload, ok := strings.Cut(strings.TrimPrefix(v, "data:"), ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, errors.New(`data URL must have the form "data:image/…;base64,<data>"`)
		}
		b, err := decodeBase64(payload)
		if err != nil {
			return nil, fmt.Errorf("data URL: %w", err)
		}
		data = b
		v = "data:"
	case strings.HasPrefix(v, "base64:"):
		b, err := decodeBase64(strings.TrimPrefix(v, "base64:"))
		if err != nil {
			return nil, fmt.Errorf("base64: %w", err)
		}
		data = b
		v = "base64:"
	default:
		p := v
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		data = b
	}
	mime, err := sniffImage(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shorten(v), err)
	}
	return &Picture{MIME: mime, Size: len(data), Source: v, Data: data}, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("invalid base64: %w", err)
	}
	return b, nil
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// jsonError adds the line and column to a JSON decoding error; at is where
// the decoder stopped, used when the error does not say.
func jsonError(raw []byte, err error, at int64) error {
	off := at
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if off > int64(len(raw)) {
		off = int64(len(raw))
	}
	line := 1 + bytes.Count(raw[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(raw[:off], '\n')
	return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
}
