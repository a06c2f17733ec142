package container

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"regexp"
)

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName checks a --name value.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// The random names are "adjective_surname", like docker's; the surnames are
// people who shaped how files and processes are kept.
var (
	nameAdjectives = []string{
		"agile", "bold", "brave", "bright", "calm", "clever", "cool", "curious",
		"daring", "eager", "fervent", "fond", "gallant", "gentle", "happy", "jolly",
		"keen", "kind", "lucid", "merry", "modest", "nimble", "patient", "quiet",
		"relaxed", "serene", "sharp", "steady", "tender", "vivid", "wise", "zealous",
	}
	nameSurnames = []string{
		"allen", "babbage", "backus", "bell", "cerf", "codd", "corbato", "dijkstra",
		"engelbart", "hamilton", "hopper", "kernighan", "knuth", "lamport", "liskov", "lovelace",
		"mccarthy", "mcilroy", "minsky", "ossanna", "perlman", "pike", "ritchie", "shannon",
		"stonebraker", "sutherland", "thompson", "torvalds", "turing", "wilkes", "wirth", "wozniak",
	}
)

// randomName picks a name; after a few collisions a digit is appended, as
// docker does.
func randomName(attempt int) string {
	pick := func(list []string) string {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		if err != nil {
			return list[0]
		}
		return list[n.Int64()]
	}
	name := pick(nameAdjectives) + "_" + pick(nameSurnames)
	if attempt > 3 {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		name += d.String()
	}
	return name
}
