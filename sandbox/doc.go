// Package sandbox is portrait's embedded messenger engine: a simulated
// WhatsApp or MAX with an account, contacts, groups, privacy settings,
// latency and upstream faults, so that a server works out of the box and
// every test runs without a phone. It is the default engine.
//
// # World
//
// Each instance has a World: its account (own number, linked or not, own
// picture), its contacts (with or without an account, picture set or not,
// hidden by privacy, faults) and its groups (the account's role, whether only
// admins may edit the info, picture). The world lives in the portrait.KV of
// the instance: the document under "sandbox/world" and each picture under
// "sandbox/pic/<chat id>" ("sandbox/pic/self" for the account's own); a
// generated picture (the demo world's, "generated:…" in a world file) is
// stored as a reference to its seed, so that the demo pictures are stored
// once however many instances there are. It is read at every call and every
// change is stored before it is acknowledged.
//
// When an instance without a world is opened, its world is seeded by a
// Seeder: the built-in demo world (DemoWorld, DemoChats) or a world file
// (LoadWorldFile).
//
// # World file
//
// A world file is JSON with one section per instance type, "whatsapp" and
// "max" ("v3", the typeInstance name, is accepted for "max"). Instances of a
// type the file has no section for get the demo world.
//
//	{
//	  "comment": "optional, ignored",
//	  "whatsapp": {
//	    "account": {"phone": "11001234567", "linked": true, "picture": "generated:me"},
//	    "contacts": [
//	      {"chatId": "11001230001@c.us", "name": "Alice", "picture": "photos/alice.jpg"},
//	      {"chatId": "11001230003@c.us", "picture": "generated:carol", "hidden": true},
//	      {"chatId": "11001230005@c.us", "hasAccount": false},
//	      {"chatId": "11001230006@c.us", "fault": "timeout"}
//	    ],
//	    "groups": [
//	      {"chatId": "120363000000000001@g.us", "name": "Team", "role": "admin",
//	       "onlyAdminsEditInfo": true, "picture": "generated:team.png"}
//	    ]
//	  },
//	  "max": {
//	    "account": {"id": "10000000", "phone": "11001234567"},
//	    "contacts": [{"chatId": "10000001", "picture": "data:image/png;base64,iVBORw0…"}],
//	    "groups": [{"chatId": "-10000000000001", "role": "member"}]
//	  }
//	}
//
// Account: "phone" (WhatsApp: required, 7–15 digits; the account is
// "<phone>@c.us"), "id" (MAX only, required: the own positive user id),
// "linked" (default true), "picture". Contacts: "chatId" (a contact id of
// the section's type), "name", "hasAccount" (default true), "hidden"
// (default false), "fault" ("", "timeout" or "rate-limit"), "picture".
// Groups: "chatId" (a group id of the section's type), "name", "role"
// ("admin", "member" or "none"; default "member"), "onlyAdminsEditInfo"
// (default false), "picture". A picture is absent or "" for none, a path
// relative to the world file, a "data:image/…;base64,…" URL, "base64:…", or
// "generated:<seed>" for a picture drawn from the seed (JPEG; append ".png"
// for PNG). Unknown fields, invalid or duplicate chat ids and unreadable
// pictures are errors that name the section, entry and field. WORLD.md in
// this directory documents the format for users.
//
// # Simulation
//
// Options tune the simulation; the zero Options switch it all off (the
// server's defaults are in the configuration reference). A session reports
// StateStarting for Options.StartDelay, then StateAuthorized or
// StateNotAuthorized. Lookups and picture changes take Options.Latency;
// contacts with faults time out or hit the rate limit when Options.Faults is
// on; unknown groups time out after Options.UnknownGroupTimeout; picture
// changes of one target within Options.PictureCooldown are refused with
// portrait.ErrUpstreamRateLimit.
//
// # Admin operations
//
// Engine.Update, Engine.Scan and Engine.World change and show a world from
// the outside, as the admin API and CLI do: a contact changing their
// picture (reported to open sessions as a portrait.PictureChange), privacy
// settings, faults, the phone scanning the QR code.
package sandbox
