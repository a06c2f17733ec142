// Package events is the store's append-only event log: what happened to
// containers (create, start, die, stop, kill, pause, health_status, ...),
// written by whichever strata process did it and read back by `events` and
// `wait --condition`. There is no daemon to broadcast events, so the log
// file is the broadcast: readers follow it as it grows.
//
// Each event is one JSON line in docker's event message shape. Lines are
// written with a single O_APPEND write each, so concurrent writers never
// interleave within a line.
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FileName is the log's name in the store's root.
const FileName = "events.log"

// Actor is what an event is about.
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// Event is docker's events message.
type Event struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string `json:"Type"`
	Action   string `json:"Action"`
	Actor    Actor  `json:"Actor"`
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// At is the event's time.
func (e Event) At() time.Time { return time.Unix(0, e.TimeNano) }

// Log is the event log of one store.
type Log struct{ path string }

// Open returns the log of the store at root.
func Open(root string) *Log { return &Log{path: filepath.Join(root, FileName)} }

// Container records action on a container. attrs are extra attributes
// (exitCode, signal, ...) next to its name and image.
func (l *Log) Container(action, id, name, image string, attrs map[string]string) error {
	a := map[string]string{"name": name, "image": image}
	for k, v := range attrs {
		a[k] = v
	}
	now := time.Now()
	e := Event{
		Status: action, ID: id, From: image, Type: "container", Action: action,
		Actor: Actor{ID: id, Attributes: a}, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano(),
	}
	return l.Append(e)
}

// Append writes e as one line.
func (l *Log) Append(e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return nil
}

// pollInterval is how often a follower looks for new lines.
const pollInterval = 50 * time.Millisecond

// Read calls fn for each event from since (inclusive) on, oldest first.
// With follow it keeps reading as the log grows until ctx ends, until is
// passed, or fn returns false; otherwise it stops at the end of the log
// (or at until). A zero since or until is no bound.
func (l *Log) Read(ctx context.Context, since, until time.Time, follow bool, fn func(Event) bool) error {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) && follow {
		// Nothing happened yet: wait for the first writer.
		for errors.Is(err, os.ErrNotExist) {
			if !sleep(ctx, until, pollInterval) {
				return nil
			}
			f, err = os.Open(l.path)
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			// A line being written: keep its start for the next round.
			partial = append(partial, line...)
			if !follow || !sleep(ctx, until, pollInterval) {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("event log: %w", err)
		}
		if len(partial) > 0 {
			line = append(partial, line...)
			partial = nil
		}
		var e Event
		if json.Unmarshal(line, &e) != nil {
			continue // a torn line from a crash mid-write
		}
		at := e.At()
		if !until.IsZero() && at.After(until) {
			return nil
		}
		if !since.IsZero() && at.Before(since) {
			continue
		}
		if !fn(e) {
			return nil
		}
	}
}

// sleep waits d; false when ctx ended or until passed meanwhile.
func sleep(ctx context.Context, until time.Time, d time.Duration) bool {
	if !until.IsZero() && time.Now().After(until) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
