package progress

import (
	"bytes"
	"strings"
	"testing"
)

// The same calls give docker's plain lines on a pipe and bars that end on
// each layer's last status on a terminal.
func script(t Transfers) {
	t.Print("latest: Pulling from library/busybox\n")
	t.Step("aaa", "Waiting")
	t.Step("bbb", "Waiting")
	t.Done("aaa", "Already exists")
	t.Step("bbb", "Downloading")
	t.Bytes("bbb", 512, 1024)
	t.Bytes("bbb", 1024, 1024)
	t.Step("bbb", "Extracting")
	t.Done("bbb", "Pull complete")
	t.Print("Digest: sha256:x\n")
	t.Note("ccc", "Preparing")
	t.Done("ccc", "Pushed")
	t.Close()
}

func TestPlainTransfers(t *testing.T) {
	var b bytes.Buffer
	script(NewPlainTransfers(&b))
	want := "latest: Pulling from library/busybox\naaa: Already exists\nbbb: Pull complete\nDigest: sha256:x\nccc: Preparing\nccc: Pushed\n"
	if b.String() != want {
		t.Fatalf("plain:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTTYTransfers(t *testing.T) {
	var b bytes.Buffer
	script(NewTTYTransfers(&b))
	out := b.String()
	for _, want := range []string{"latest: Pulling from library/busybox\n", "aaa: Already exists", "bbb: Pull complete", "Digest: sha256:x\n", "ccc: Pushed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("tty output lacks %q:\n%q", want, out)
		}
	}
	// The digest line comes after the layers' last frame.
	if strings.Index(out, "Digest:") < strings.LastIndex(out, "bbb: Pull complete") {
		t.Fatalf("digest printed before the bars ended:\n%q", out)
	}
}

func TestNotATerminal(t *testing.T) {
	if _, ok := NewTransfers(&bytes.Buffer{}).(*PlainTransfers); !ok {
		t.Fatal("a buffer got the terminal view")
	}
}
