package receipts

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestRoundTripJSON(t *testing.T) {
	r := signed(t)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var d Receipt
	if err := json.Unmarshal(b, &d); err != nil || d != r {
		t.Fatalf("%+v %v", d, err)
	}
	// Through a pointer, inside another structure, and at the extremes.
	r.Cumulative, r.Time = ^uint64(0), 1<<63-1
	type wrap struct {
		R  *Receipt `json:"r"`
		Rs []Receipt
	}
	b, err = json.Marshal(wrap{&r, []Receipt{r, r}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cumulative":"18446744073709551615","time":9223372036854775807`) {
		t.Fatalf("extremes: %s", b)
	}
	if longest, _ := r.MarshalJSON(); len(longest) != MaxJSONSize {
		t.Fatalf("longest JSON form is %d bytes, MaxJSONSize %d", len(longest), MaxJSONSize)
	}
	var w wrap
	if err := json.Unmarshal(b, &w); err != nil || *w.R != r || len(w.Rs) != 2 || w.Rs[1] != r {
		t.Fatalf("%+v %v", w, err)
	}
}

func TestJSONUppercaseHexAndWhitespace(t *testing.T) {
	r := signed(t)
	b, _ := json.Marshal(r)
	up := strings.Replace(string(b), hex.EncodeToString(r.Signature[:]), strings.ToUpper(hex.EncodeToString(r.Signature[:])), 1)
	up = " \n" + strings.ReplaceAll(up, ",", " ,\t") + "\n"
	var d Receipt
	if err := d.UnmarshalJSON([]byte(up)); err != nil || d != r {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestMarshalJSONRefuses(t *testing.T) {
	r := signed(t)
	r.Version = 0
	_, err := json.Marshal(r)
	wantErr(t, err, ErrVersion)
	r = signed(t)
	r.Time = -1
	_, err = r.MarshalJSON()
	wantErr(t, err, ErrTime)
}

func TestUnmarshalJSONMalformed(t *testing.T) {
	r := signed(t)
	good, _ := json.Marshal(r)
	g := string(good)
	repl := func(old, new string) string {
		if !strings.Contains(g, old) {
			t.Fatalf("%q not in %s", old, g)
		}
		return strings.Replace(g, old, new, 1)
	}
	sig := `"signature":"` + hex.EncodeToString(r.Signature[:]) + `"`
	cases := []struct {
		name, in string
		class    error
		field    string // "" when the error is not about one field
		words    []string
	}{
		{"empty", ``, ErrMalformed, "", []string{"object"}},
		{"null", `null`, ErrMalformed, "", []string{"object", "null"}},
		{"array", `[]`, ErrMalformed, "", []string{"object"}},
		{"string", `"x"`, ErrMalformed, "", []string{"object"}},
		{"truncated", g[:len(g)-1], ErrMalformed, "", []string{"unterminated"}},
		{"trailing", g + ` 1`, ErrMalformed, "", []string{"after"}},
		{"two objects", g + g, ErrMalformed, "", []string{"after"}},
		{"syntax", `{"version":1,}`, ErrMalformed, "", nil},
		{"unknown field", repl(`{`, `{"extra":true,`), ErrMalformed, "extra", []string{"unknown"}},
		{"long unknown field", repl(`{`, `{"`+strings.Repeat("x", 1000)+`":1,`), ErrMalformed, strings.Repeat("x", 64) + "...", []string{"unknown"}},
		{"case", repl(`"session"`, `"Session"`), ErrMalformed, "Session", []string{"unknown"}},
		{"duplicate", repl(`"version":1`, `"version":1,"version":1`), ErrMalformed, "version", []string{"duplicate"}},
		{"missing version", repl(`"version":1,`, ``), ErrMalformed, "version", []string{"missing"}},
		{"missing signature", repl(`,`+sig, ``), ErrMalformed, "signature", []string{"missing"}},
		{"version 2", repl(`"version":1`, `"version":2`), ErrVersion, "version", []string{"2"}},
		{"version 0", repl(`"version":1`, `"version":0`), ErrVersion, "version", []string{"0"}},
		{"version huge", repl(`"version":1`, `"version":100000000000000000000`), ErrMalformed, "version", []string{"range"}},
		{"version string", repl(`"version":1`, `"version":"1"`), ErrMalformed, "version", []string{"integer", "string"}},
		{"version float", repl(`"version":1`, `"version":1.0`), ErrMalformed, "version", []string{"fraction"}},
		{"version null", repl(`"version":1`, `"version":null`), ErrMalformed, "version", []string{"null"}},
		{"info_hash short", repl(`"info_hash":"0123`, `"info_hash":"123`), ErrMalformed, "info_hash", []string{"40", "39"}},
		{"info_hash long", repl(`"info_hash":"0123`, `"info_hash":"000123`), ErrMalformed, "info_hash", []string{"40", "42"}},
		{"info_hash number", repl(`"info_hash":"0123456789abcdef0123456789abcdef01234567"`, `"info_hash":5`), ErrMalformed, "info_hash", []string{"hex string", "number"}},
		{"uploader not hex", repl(`"uploader":"`+hex.EncodeToString(r.Uploader[:]), `"uploader":"zz`+hex.EncodeToString(r.Uploader[1:])), ErrMalformed, "uploader", []string{"hex"}},
		{"downloader short", repl(hex.EncodeToString(r.Downloader[:]), hex.EncodeToString(r.Downloader[:31])), ErrMalformed, "downloader", []string{"64", "62"}},
		{"session odd", repl(`"session":"a1b2c3d4e5f60708"`, `"session":"a1b2c3d4e5f6070"`), ErrMalformed, "session", []string{"16", "15"}},
		{"session object", repl(`"session":"a1b2c3d4e5f60708"`, `"session":{}`), ErrMalformed, "session", []string{"object"}},
		{"signature short", repl(sig, `"signature":"00"`), ErrMalformed, "signature", []string{"128", "2"}},
		{"signature array", repl(sig, `"signature":[1,2]`), ErrMalformed, "signature", []string{"array"}},
		{"cumulative number", repl(`"cumulative":"1073741824"`, `"cumulative":1073741824`), ErrMalformed, "cumulative", []string{"decimal string"}},
		{"cumulative negative", repl(`"cumulative":"1073741824"`, `"cumulative":"-1"`), ErrMalformed, "cumulative", []string{"digits"}},
		{"cumulative overflow", repl(`"cumulative":"1073741824"`, `"cumulative":"18446744073709551616"`), ErrMalformed, "cumulative", []string{"2^64"}},
		{"cumulative huge", repl(`"cumulative":"1073741824"`, `"cumulative":"`+strings.Repeat("9", 100)+`"`), ErrMalformed, "cumulative", []string{"2^64"}},
		{"cumulative leading zero", repl(`"cumulative":"1073741824"`, `"cumulative":"007"`), ErrMalformed, "cumulative", []string{"leading zero"}},
		{"cumulative empty", repl(`"cumulative":"1073741824"`, `"cumulative":""`), ErrMalformed, "cumulative", []string{"empty"}},
		{"cumulative space", repl(`"cumulative":"1073741824"`, `"cumulative":" 1"`), ErrMalformed, "cumulative", []string{"digits"}},
		{"cumulative float", repl(`"cumulative":"1073741824"`, `"cumulative":"1.5"`), ErrMalformed, "cumulative", []string{"digits"}},
		{"time negative", repl(`"time":1795000000`, `"time":-1`), ErrTime, "time", []string{"negative"}},
		{"time minus zero", repl(`"time":1795000000`, `"time":-0`), ErrTime, "time", []string{"negative"}},
		{"time 2^63", repl(`"time":1795000000`, `"time":9223372036854775808`), ErrTime, "time", []string{"2^63"}},
		{"time 2^64", repl(`"time":1795000000`, `"time":18446744073709551616`), ErrTime, "time", []string{"2^63"}},
		{"time fraction", repl(`"time":1795000000`, `"time":1795000000.0`), ErrMalformed, "time", []string{"fraction"}},
		{"time exponent", repl(`"time":1795000000`, `"time":1e9`), ErrMalformed, "time", []string{"exponent"}},
		{"time string", repl(`"time":1795000000`, `"time":"1795000000"`), ErrMalformed, "time", []string{"integer", "string"}},
		{"time bool", repl(`"time":1795000000`, `"time":true`), ErrMalformed, "time", []string{"boolean"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := signed(t)
			d.Cumulative = 7
			before := d
			err := d.UnmarshalJSON([]byte(c.in))
			wantErr(t, err, c.class, c.words...)
			if d != before {
				t.Fatal("UnmarshalJSON changed the receipt on error")
			}
			var fe *FieldError
			isField := errors.As(err, &fe)
			if c.field != "" && (!isField || fe.Field != c.field || !strings.Contains(err.Error(), `"`+c.field)) {
				t.Fatalf("error %v does not name field %q", err, c.field)
			}
			if c.field == "" && isField {
				t.Fatalf("error %v names field %q", err, fe.Field)
			}
			// encoding/json agrees (it may word syntax errors its own way).
			var e Receipt
			if json.Unmarshal([]byte(c.in), &e) == nil {
				t.Fatal("json.Unmarshal accepted it")
			}
		})
	}
}
