// greeter is the corpus's Go module: a static binary in a scratch image.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
)

func main() {
	name := "world"
	if len(os.Args) > 1 {
		name = strings.Join(os.Args[1:], " ")
	}
	sum := sha256.Sum256([]byte(name))
	out, _ := json.Marshal(map[string]string{
		"greeting": "hello, " + name,
		"sha256":   fmt.Sprintf("%x", sum[:4]),
		"os":       runtime.GOOS,
	})
	fmt.Println(string(out))
}
