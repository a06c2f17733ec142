package image

import (
	"encoding/json"
	"testing"
)

// References are user input (CLI arguments, FROM lines, archive names):
// parsing never panics, and a parsed name prints as itself.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:1.36", "localhost:5000/a/b:c", "a@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"UPPER", "a:b:c", "", ":", "docker.io/library/x", "[::1]:5000/x:y", "x/y/z/w@sha512:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNamed(s)
		if err != nil {
			return
		}
		again, err := ParseNamed(n.String())
		if err != nil || again.String() != n.String() {
			t.Fatalf("%q parsed as %q, which parses as %v, %v", s, n, again, err)
		}
		ParseTagged(s)
		Familiar(n.String())
		SplitFamiliar(n.String())
	})
}

// Image configs come from registries and archives: decoding never panics,
// and what decodes encodes and decodes to the same thing.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":["sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"]},"history":[{"created_by":"x"}]}`))
	f.Add([]byte(`{"config":{"Healthcheck":{"Test":["CMD","true"],"Interval":1},"OnBuild":["RUN x"],"Shell":["/bin/sh","-c"]}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("a decoded config does not encode: %v", err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("an encoded config does not decode: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(c2)
		if string(out) != string(out2) {
			t.Fatalf("config changes on a round trip:\n%s\n%s", out, out2)
		}
	})
}
