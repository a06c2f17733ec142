package container

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// logs -t prints docker's fixed-width nanoseconds (RFC3339NanoFixed): a
// time whose nanoseconds end in zeros keeps all nine digits, so columns
// line up and sort as text.
func TestLogsTimestampsFixedWidth(t *testing.T) {
	var out bytes.Buffer
	w := logWriter{stdout: &out, stderr: &out, o: LogOptions{Timestamps: true}}
	line, err := json.Marshal(LogEntry{Log: "hi\n", Stream: "stdout", Time: time.Date(2026, 11, 27, 19, 11, 36, 7201470, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.write(line); err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-27T19:11:36.007201470Z hi\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
