package events

import (
	"context"
	"testing"
	"time"
)

func TestReadBounds(t *testing.T) {
	l := Open(t.TempDir())
	for _, a := range []string{"create", "start", "die"} {
		if err := l.Container(a, "id1", "n", "img", nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := l.Read(context.Background(), time.Time{}, time.Now(), false, func(e Event) bool {
		got = append(got, e.Action)
		return e.Action != "start"
	})
	if err != nil || len(got) != 2 || got[1] != "start" {
		t.Errorf("read %v %v", got, err)
	}
	// A follower sees an event appended after it started.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from := time.Now()
	done := make(chan string, 1)
	go func() {
		_ = l.Read(ctx, from, time.Time{}, true, func(e Event) bool {
			done <- e.Action
			return false
		})
	}()
	if err := l.Container("destroy", "id1", "n", "img", nil); err != nil {
		t.Fatal(err)
	}
	if a := <-done; a != "destroy" {
		t.Errorf("followed %q", a)
	}
}
