package portrait_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait"
)

func TestParseChatID(t *testing.T) {
	wa, mx := portrait.TypeWhatsApp, portrait.TypeMAX
	tests := []struct {
		typ  portrait.InstanceType
		in   string
		kind portrait.ChatKind // 0 = invalid
	}{
		{wa, "11001234567@c.us", portrait.KindContact},
		{wa, "79001234567@c.us", portrait.KindContact},
		{wa, "3816412345@c.us", portrait.KindContact},
		{wa, "1234567@c.us", portrait.KindContact},         // 7 digits: shortest real numbers
		{wa, "123456789012345@c.us", portrait.KindContact}, // 15 digits: E.164 maximum
		{wa, "123456@c.us", 0},
		{wa, "1234567890123456@c.us", 0},
		{wa, "01001234567@c.us", 0},
		{wa, "+11001234567@c.us", 0},
		{wa, "1100123456a@c.us", 0},
		{wa, "11001234567", 0},
		{wa, "11001234567@s.whatsapp.net", 0},
		{wa, "11001234567@C.US", 0},
		{wa, " 11001234567@c.us", 0},
		{wa, "@c.us", 0},
		{wa, "", 0},
		{wa, "12345678901234@lid", portrait.KindContact},
		{wa, "1@lid", portrait.KindContact},
		{wa, "0123@lid", 0},
		{wa, "123456789012345678901@lid", 0},
		{wa, "120363043968066561@g.us", portrait.KindGroup},
		{wa, "120363043968066561@c.us", 0}, // 18 digits is not a phone number
		{wa, "11001234567-1581234048@g.us", portrait.KindGroup},
		{wa, "11001234567-0581234048@g.us", 0},
		{wa, "11001234567-@g.us", 0},
		{wa, "-1581234048@g.us", 0},
		{wa, "0202221234@g.us", 0},
		{wa, "020222123456789012@g.us", 0},
		{wa, "12345@g.us", 0},
		{wa, "120363043968066561@g.us@g.us", 0},
		{wa, "10000000", 0}, // a MAX id on a WhatsApp instance
		{mx, "10000000", portrait.KindContact},
		{mx, "87654321", portrait.KindContact},
		{mx, "-10000000000000", portrait.KindGroup},
		{mx, "-722703071564882", portrait.KindGroup},      // 16 characters
		{mx, "-7227030715648821", 0},                      // 17 characters
		{mx, "9223372036854775807", portrait.KindContact}, // int64 max
		{mx, "9223372036854775808", 0},
		{mx, "0", 0},
		{mx, "-0", 0},
		{mx, "010000000", 0},
		{mx, "--10000000", 0},
		{mx, "+10000000", 0},
		{mx, "11001234567@c.us", 0},
		{mx, "", 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+"/"+tt.in, func(t *testing.T) {
			c, err := portrait.ParseChatID(tt.typ, tt.in)
			if tt.kind == 0 {
				var ce *portrait.ChatIDError
				if !errors.As(err, &ce) {
					t.Fatalf("ParseChatID(%q) = %v, %v; want a *ChatIDError", tt.in, c, err)
				}
				if !strings.Contains(ce.Error(), "'chatId' must be") {
					t.Errorf("message %q does not say what the format must be", ce.Error())
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChatID(%q): %v", tt.in, err)
			}
			if c.String() != tt.in || c.Kind() != tt.kind {
				t.Errorf("ParseChatID(%q) = %q kind %v; want kind %v", tt.in, c, c.Kind(), tt.kind)
			}
		})
	}
}

func TestWhatsAppFormatsMessage(t *testing.T) {
	_, err := portrait.ParseChatID(portrait.TypeWhatsApp, "7123")
	want := "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want GREEN-API's message %q", err, want)
	}
}

func TestPhoneChatID(t *testing.T) {
	c, err := portrait.PhoneChatID(11001234567)
	if err != nil || c.String() != "11001234567@c.us" || c.Kind() != portrait.KindContact {
		t.Fatalf("PhoneChatID = %v, %v", c, err)
	}
	for _, bad := range []int64{0, -11001234567, 123, 1234567890123456} {
		if _, err := portrait.PhoneChatID(bad); err == nil {
			t.Errorf("PhoneChatID(%d) accepted", bad)
		}
	}
}

func FuzzParseChatID(f *testing.F) {
	for _, s := range []string{"11001234567@c.us", "120363043968066561@g.us", "11001234567-1581234048@g.us", "1@lid", "-10000000000000", "10000000", "@", "-", "0@g.us"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, max bool) {
		typ := portrait.TypeWhatsApp
		if max {
			typ = portrait.TypeMAX
		}
		c, err := portrait.ParseChatID(typ, s)
		if err != nil {
			if !c.IsZero() {
				t.Fatalf("invalid %q returned a non-zero ChatID", s)
			}
			return
		}
		if c.String() != s {
			t.Fatalf("ParseChatID(%q).String() = %q", s, c.String())
		}
		if c.Kind() != portrait.KindContact && c.Kind() != portrait.KindGroup {
			t.Fatalf("valid %q has kind %v", s, c.Kind())
		}
		// A valid id is ASCII without spaces or slashes, so it is safe in
		// paths and logs.
		if strings.ContainsAny(s, " /\\\n\r\t%") {
			t.Fatalf("accepted %q", s)
		}
		again, err := portrait.ParseChatID(typ, c.String())
		if err != nil || again != c {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}
