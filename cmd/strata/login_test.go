package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
)

// runEnv runs strata with extra environment variables.
func (c *cli) runEnv(env []string, stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(strataBin, append([]string{"--root", c.root}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("strata %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func TestLoginPushPullWithCredentials(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-ship"
	reg := rt.StartAuth(t, "ship", secret)
	c := newBusyboxCLI(t)
	cfgDir := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + cfgDir}
	ref := reg.Ref("ship/private:1")
	c.ok("tag", "busybox", ref)
	noSecret := func(outs ...string) {
		t.Helper()
		for _, o := range outs {
			if strings.Contains(o, secret) || strings.Contains(o, base64.StdEncoding.EncodeToString([]byte("ship:"+secret))) {
				t.Fatalf("output shows the secret: %s", o)
			}
		}
	}

	if _, errs, code := c.runEnv(env, "", "push", ref); code != 1 || !strings.Contains(errs, "push access denied for "+reg.Host+"/ship/private: unauthorized") {
		t.Errorf("push without login: exit %d, %s", code, errs)
	}
	out, errs, code := c.runEnv(env, "wrong\n", "login", "-u", "ship", "--password-stdin", reg.Host)
	if code != 1 || !strings.Contains(errs, "incorrect username or password") {
		t.Errorf("login with a wrong password: exit %d, %s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
		t.Error("a failed login wrote config.json")
	}
	out, errs, code = c.runEnv(env, secret+"\n", "login", "-u", "ship", "--password-stdin", reg.Host)
	if code != 0 || out != "Login Succeeded\n" || !strings.Contains(errs, "unencrypted") {
		t.Fatalf("login: exit %d, %q, %q", code, out, errs)
	}
	noSecret(out, errs)
	// Byte for byte what docker writes.
	want := "{\n\t\"auths\": {\n\t\t\"" + reg.Host + "\": {\n\t\t\t\"auth\": \"" + base64.StdEncoding.EncodeToString([]byte("ship:"+secret)) + "\"\n\t\t}\n\t}\n}"
	if b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); string(b) != want {
		t.Errorf("config.json:\n%s\nwant:\n%s", b, want)
	}
	out, errs, code = c.runEnv(env, "", "push", ref)
	if code != 0 || !strings.Contains(out, "1: digest: sha256:") {
		t.Fatalf("push after login: exit %d, %s%s", code, out, errs)
	}
	noSecret(out, errs)
	other := newCLI(t)
	if out, errs, code := other.runEnv(env, "", "pull", ref); code != 0 {
		t.Fatalf("pull with the same credentials: %s%s", out, errs)
	}
	if out, _, code := c.runEnv(env, "", "login", reg.Host); code != 0 || out != "Authenticating with existing credentials...\nLogin Succeeded\n" {
		t.Errorf("login with stored credentials: %q", out)
	}
	if out, _, code := c.runEnv(env, "", "logout", reg.Host); code != 0 || out != "Removing login credentials for "+reg.Host+"\n" {
		t.Errorf("logout: %d %q", code, out)
	}
	if _, errs, code := other.runEnv(env, "", "pull", ref); code == 0 {
		t.Errorf("pull after logout succeeded: %s", errs)
	}
	if _, errs, code := c.runEnv(env, "x", "login", "--password-stdin", reg.Host); code != 125 || !strings.Contains(errs, "--username") {
		t.Errorf("--password-stdin without -u: %d %s", code, errs)
	}

	// A credential helper named by credsStore keeps the secret instead.
	bin := t.TempDir()
	store := filepath.Join(bin, "store")
	helper := "#!/bin/sh\ncase $1 in\nstore) cat > " + store + ";;\nget) if [ -s " + store + " ]; then cat " + store + "; else echo 'credentials not found in native keychain'; exit 1; fi;;\nerase) : > " + store + ";;\nlist) echo '{}';;\nesac\n"
	os.WriteFile(filepath.Join(bin, "docker-credential-shiptest"), []byte(helper), 0o755)
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credsStore": "shiptest"}`), 0o600)
	env = append(env, "PATH="+bin+":"+os.Getenv("PATH"))
	out, errs, code = c.runEnv(env, secret, "login", "-u", "ship", "--password-stdin", reg.Host)
	if code != 0 || strings.Contains(errs, "unencrypted") {
		t.Fatalf("login through a helper: %d %s %s", code, out, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(b), "auth\"") || !strings.Contains(string(b), "shiptest") {
		t.Errorf("config.json with a helper:\n%s", b)
	}
	if b, _ := os.ReadFile(store); !strings.Contains(string(b), secret) {
		t.Errorf("the helper was not given the secret: %s", b)
	}
	if out, errs, code := c.runEnv(env, "", "push", ref); code != 0 {
		t.Errorf("push with the helper's credentials: %s%s", out, errs)
	}
}

func TestSearchLoopbackRegistry(t *testing.T) {
	t.Parallel()
	reg := rt.Start(t)
	c := newBusyboxCLI(t)
	c.ok("tag", "busybox", reg.Ref("ship/searchme:1"))
	c.ok("push", "-q", reg.Ref("ship/searchme:1"))
	// The pushed repository's row shows the digest the registry has; busybox's has none.
	rows := c.ok("images", "--digests", "--format", "{{.Repository}} {{.Digest}}")
	if !strings.Contains(rows, reg.Ref("ship/searchme")+" sha256:") || !strings.Contains(rows, "busybox <none>") {
		t.Errorf("images --digests after a push:\n%s", rows)
	}
	out := c.ok("search", reg.Host+"/searchme")
	want := "NAME                                          DESCRIPTION   STARS     OFFICIAL\n"
	if lines := strings.Split(out, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], reg.Host+"/ship/searchme ") {
		t.Errorf("search printed:\n%s\nwant a table like:\n%s", out, want)
	}
	if out := c.ok("search", "--format", "{{.Name}}", reg.Host+"/nothing-matches"); out != "" {
		t.Errorf("search without a match printed %q", out)
	}
	if _, _, code := c.run(nil, "search", "--limit", "0", "x"); code != 1 {
		t.Errorf("--limit 0 exited %d", code)
	}
}

// On a terminal, push draws a bar per layer (docker's words as their
// status) and ends with docker's digest line.
func TestPushProgressTTY(t *testing.T) {
	t.Parallel()
	reg := rt.Start(t)
	c := newBusyboxCLI(t)
	ref := reg.Ref("ship/tty:1")
	c.ok("tag", "busybox", ref)
	for _, want := range []string{"Pushed", "Layer already exists"} {
		cmd := exec.Command(strataBin, "--root", c.root, "push", ref)
		master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := readPTY(master)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("push on a terminal: %v", err)
		}
		out.waitFor(t, "the digest line", func(s string) bool { return strings.Contains(s, "1: digest: sha256:") })
		master.Close()
		out.mu.Lock()
		s := out.buf.String()
		out.mu.Unlock()
		if !strings.HasPrefix(s, "The push refers to repository ["+reg.Host+"/ship/tty]") || !strings.Contains(s, ": "+want) || !cursorUp.MatchString(s) {
			t.Errorf("push on a terminal drew:\n%q\nwant bars ending in %q", s, want)
		}
	}
}

// On a terminal, load draws docker's "Loading layer" bars, unless -q.
func TestLoadProgressTTY(t *testing.T) {
	t.Parallel()
	src := newBusyboxCLI(t)
	archive := filepath.Join(t.TempDir(), "bb.tar")
	src.ok("save", "-o", archive, "busybox")
	for _, quiet := range []bool{false, true} {
		dst := newCLI(t)
		args := []string{"--root", dst.root, "load", "-i", archive}
		if quiet {
			args = append(args, "-q")
		}
		cmd := exec.Command(strataBin, args...)
		master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := readPTY(master)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("load on a terminal: %v", err)
		}
		out.waitFor(t, "the loaded name", func(s string) bool { return strings.Contains(s, "Loaded image: busybox:latest") })
		master.Close()
		out.mu.Lock()
		s := out.buf.String()
		out.mu.Unlock()
		if got := strings.Contains(s, ": Loading layer"); got == quiet {
			t.Errorf("load -q=%v on a terminal drew:\n%q", quiet, s)
		}
	}
}
