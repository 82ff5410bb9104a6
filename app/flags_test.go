package app

import (
	"flag"
	"io"
	"reflect"
	"testing"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		dir  string
		pos  []string
	}{
		{[]string{"--data-dir", "D", "123"}, "D", []string{"123"}},
		{[]string{"123", "--data-dir", "D"}, "D", []string{"123"}},
		{[]string{"ID", "CHAT", "--data-dir=D", "FILE"}, "D", []string{"ID", "CHAT", "FILE"}},
		{[]string{"ID", "--", "--data-dir", "D"}, "", []string{"ID", "--data-dir", "D"}},
		{[]string{"ID", "-"}, "", []string{"ID", "-"}},
		{nil, "", nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dir := fs.String("data-dir", "", "")
		if err := parseFlags(fs, tc.args); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if *dir != tc.dir || !reflect.DeepEqual(append([]string{}, fs.Args()...), append([]string{}, tc.pos...)) {
			t.Errorf("%q: data-dir %q, args %q; want %q, %q", tc.args, *dir, fs.Args(), tc.dir, tc.pos)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := parseFlags(fs, []string{"ID", "--unknown"}); err == nil {
		t.Error("an unknown flag after a positional argument was accepted")
	}
}
