package compression

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestDecompressRecognisesEveryFormat(t *testing.T) {
	payload := bytes.Repeat([]byte("strata layer bytes\n"), 1000)
	var gz, zs, xzb bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(payload)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(payload)
	zw.Close()
	xw, _ := xz.NewWriter(&xzb)
	xw.Write(payload)
	xw.Close()
	cases := map[Format][]byte{
		Uncompressed: payload,
		Gzip:         gz.Bytes(),
		Zstd:         zs.Bytes(),
		Xz:           xzb.Bytes(),
	}
	if _, err := exec.LookPath("bzip2"); err == nil {
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(payload)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases[Bzip2] = out
	}
	for want, in := range cases {
		t.Run(want.String(), func(t *testing.T) {
			rc, got, err := Decompress(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got != want {
				t.Fatalf("format %v, want %v", got, want)
			}
			out, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, payload) {
				t.Fatalf("payload differs after %v round trip", want)
			}
		})
	}
}

func TestDecompressCorruptGzipFails(t *testing.T) {
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write([]byte(strings.Repeat("x", 5000)))
	gw.Close()
	b := gz.Bytes()
	b[len(b)/2] ^= 0xff
	rc, _, err := Decompress(bytes.NewReader(b))
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	if err == nil {
		t.Fatal("corrupt gzip decompressed without error")
	}
}

func TestDecompressShortInput(t *testing.T) {
	rc, f, err := Decompress(strings.NewReader("ab"))
	if err != nil || f != Uncompressed {
		t.Fatalf("got %v %v", f, err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != "ab" {
		t.Fatalf("got %q", b)
	}
}
