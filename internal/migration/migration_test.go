package migration

import (
	"testing"
	"testing/fstest"
)

func TestMigrationsLoad(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"0001_a.sql": {}, "0003_c.sql": {}},
		"duplicate": {"0001_a.sql": {}, "0001_b.sql": {}},
		"no number": {"0001_a.sql": {}, "init.sql": {}},
		"zero":      {"0000_a.sql": {}, "0001_b.sql": {}},
		"start":     {"0002_b.sql": {}},
	} {
		if _, err := Load(fsys); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
	ms, err := Load(fstest.MapFS{"0002_b.sql": {}, "0010_j.sql": {}, "0001_a.sql": {},
		"0003_c.sql": {}, "0004_d.sql": {}, "0005_e.sql": {}, "0006_f.sql": {}, "0007_g.sql": {},
		"0008_h.sql": {}, "0009_i.sql": {}, "README": {}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 10 || ms[9].Name != "0010_j.sql" {
		t.Errorf("Load ordered %v", ms)
	}
}
